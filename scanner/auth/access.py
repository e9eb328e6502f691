"""Who is calling, and what they may do. Routes use these, never the JWT library directly.

A request's bearer token is verified once, before anything else reads it (`init_authentication`):
signature, expiry, revocation and the user row. The rate limiter counts the verified user, and
`login_required` and the other guards below only read the outcome.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable

from flask import Flask, current_app, g, request
from flask_jwt_extended import current_user as _jwt_user
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException, WrongTokenError
from jwt import PyJWTError

from ..errors import Forbidden, NotFound
from ..extensions import db, jwt
from . import token_cache
from .models import User
from .revocation import is_revoked

log = logging.getLogger(__name__)


@jwt.user_identity_loader
def _identity(user: User | str) -> str:
    return str(user.id) if isinstance(user, User) else str(user)


@jwt.user_lookup_loader
def _lookup(header: dict, payload: dict) -> User | None:
    try:
        user_id = uuid.UUID(payload["sub"])
    except (KeyError, ValueError):
        return None
    user = token_cache.cached_user(db.session, user_id)
    if user is None:
        user = db.session.get(User, user_id)
        if user is not None:
            token_cache.remember_user(user)
    return user


@jwt.token_in_blocklist_loader
def _revoked(header: dict, payload: dict) -> bool:
    return is_revoked(payload)


def current_user() -> User:
    return _jwt_user._get_current_object()


def current_token() -> dict:
    """The verified claims of the token this request was made with."""
    return get_jwt()


_NOT_CHECKED = object()


def _verify_once() -> None:
    """Verify the request's token, whichever route it goes to, and keep the outcome: the verified
    claims (in flask-jwt-extended's request context) or the error a guarded route answers with."""
    g.token_identity = None
    g.token_error = None
    if not request.headers.get("Authorization"):
        return  # a guarded route says the token is missing; nothing to count but the address
    try:
        verified = verify_jwt_in_request(verify_type=False)
    except (JWTExtendedException, PyJWTError) as exc:
        g.token_error = exc
        return
    except Exception as exc:  # the database or Redis failed: a guarded route fails as it would
        db.session.rollback()
        log.warning("token not verified: %s", exc)
        g.token_error = exc
        return
    if verified is not None:
        g.token_identity = str(verified[1]["sub"])


def init_authentication(app: Flask) -> None:
    app.before_request(_verify_once)


def _require(refresh: bool) -> None:
    if request.method == "OPTIONS":  # as flask-jwt-extended: a preflight carries no token
        return
    error = g.get("token_error", _NOT_CHECKED)
    if error is _NOT_CHECKED or not request.headers.get("Authorization"):
        verify_jwt_in_request(refresh=refresh)  # raises the library's own answer
        return
    if error is not None:
        raise error
    if (get_jwt().get("type") == "refresh") != refresh:
        raise WrongTokenError("Only refresh tokens are allowed" if refresh else "Only non-refresh tokens are allowed")


def _guard(refresh: bool, check: Callable[[], None] | None = None) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            _require(refresh)
            if check is not None:
                check()
            return current_app.ensure_sync(fn)(*args, **kwargs)

        return wrapper

    return decorator


def login_required(fn: Callable) -> Callable:
    """A valid, unrevoked access token of an existing user."""
    return _guard(refresh=False)(fn)


def refresh_token_required(fn: Callable) -> Callable:
    """A valid refresh token whose session was not ended; an access token is refused."""
    return _guard(refresh=True)(fn)


def roles_required(*roles: str) -> Callable[[Callable], Callable]:
    def check() -> None:
        if current_user().role not in roles:
            raise Forbidden(f"This needs the {' or '.join(roles)} role")

    return _guard(refresh=False, check=check)


def owned_or_404(obj, user: User, message: str = "Not found"):
    """Another user's object is answered exactly like a missing one; admins see everything."""
    if obj is None or (obj.user_id != user.id and not user.is_admin):
        raise NotFound(message)
    return obj


def own_or_404(obj, user: User, message: str = "Not found"):
    """For changes (scan, delete, cancel): the owner only. Admins may read another user's object,
    so they are told 403 rather than 404; a scan started by an admin would otherwise send a user's
    file to VirusTotal against that user's choice."""
    obj = owned_or_404(obj, user, message)
    if obj.user_id != user.id:
        raise Forbidden("Only the owner may do this")
    return obj

"""Who is calling, and what they may do. Routes use these, never the JWT library directly.

A request's bearer token is verified once, before anything else reads it (`init_authentication`):
signature, expiry, revocation and the user row. The rate limiter counts the verified user, and
`login_required` and the other guards below only read the outcome. Errors are flask-jwt-extended's
own exceptions, so its handlers (scanner/errors.py) answer them as they would have.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable

from flask import Flask, g, request
from flask_jwt_extended.exceptions import (
    InvalidHeaderError,
    JWTExtendedException,
    NoAuthorizationError,
    RevokedTokenError,
    UserLookupError,
    WrongTokenError,
)
from jwt import PyJWTError
from sqlalchemy import inspect

from ..errors import Forbidden, NotFound
from ..extensions import db, jwt
from . import generation, token_cache
from .models import User
from .revocation import is_revoked
from .tokens import decode

log = logging.getLogger(__name__)


@jwt.user_identity_loader
def _identity(user: User | str) -> str:
    return str(user.id) if isinstance(user, User) else str(user)


def _lookup(payload: dict) -> User | None:
    try:
        user_id = uuid.UUID(payload["sub"])
    except (KeyError, ValueError):
        return None
    now_in = generation.current()
    user = token_cache.cached_user(user_id, now_in)
    if user is None:
        user = db.session.get(User, user_id)
        if user is not None:
            token_cache.remember_user(user, now_in)
    return user


def current_user() -> User:
    """The signed-in user's row in this request's session: to change it, or to follow what it
    links to. A remembered user is put into the session on the first call."""
    user = g.token_user
    if inspect(user).detached:
        user = g.token_user = token_cache.attach(db.session(), user)
    return user


def signed_in_user() -> User:
    """Who is asking, as last checked: their id and role, for access checks and for what they own.
    It may be outside the request's session (a request that reads from elsewhere, a cache, then
    makes none), so a change made to it is not saved: current_user() for that."""
    return g.token_user


def current_token() -> dict:
    """The verified claims of the token this request was made with."""
    return g.token_claims


_NOT_CHECKED = object()
_EXPECTED = "Expected 'Authorization: Bearer <JWT>'"


def _bearer_token() -> str:
    """The token of the `Authorization: Bearer <JWT>` header (one of its comma-separated parts)."""
    header = request.headers.get("Authorization", "").strip().strip(",")
    if not header:
        raise NoAuthorizationError("Missing Authorization Header")
    bearer = [part for part in header.split(",") if part.strip() and part.split()[0] == "Bearer"]
    if len(bearer) != 1:
        raise NoAuthorizationError(f"Missing 'Bearer' type in 'Authorization' header. {_EXPECTED}")
    parts = bearer[0].split()
    if len(parts) != 2:
        raise InvalidHeaderError(f"Bad Authorization header. {_EXPECTED}")
    return parts[1]


def _verify() -> None:
    """Signature and expiry, revocation, then the user; raises the library's errors."""
    header, claims = decode(_bearer_token())
    if is_revoked(claims):
        raise RevokedTokenError(header, claims)
    user = _lookup(claims)
    if user is None:
        raise UserLookupError(f"user_lookup returned None for {claims.get('sub')}", header, claims)
    g.token_claims, g.token_user = claims, user


def _verify_once() -> None:
    """Verify the request's token, whichever route it goes to, and keep the outcome: the verified
    claims and user, or the error a guarded route answers with."""
    g.token_identity = None
    g.token_error = None
    if not request.headers.get("Authorization"):
        return  # a guarded route says the token is missing; nothing to count but the address
    try:
        _verify()
    except (JWTExtendedException, PyJWTError) as exc:
        g.token_error = exc
        return
    except Exception as exc:  # the database or Redis failed: a guarded route fails as it would
        db.session.rollback()
        log.warning("token not verified: %s", exc)
        g.token_error = exc
        return
    g.token_identity = str(g.token_claims["sub"])


def init_authentication(app: Flask) -> None:
    app.before_request(_verify_once)


def _require(refresh: bool) -> None:
    if request.method == "OPTIONS":  # as flask-jwt-extended: a preflight carries no token
        return
    error = g.get("token_error", _NOT_CHECKED)
    if error is _NOT_CHECKED:  # a request that did not pass through `_verify_once`
        _verify()
    elif error is not None:
        raise error
    elif not request.headers.get("Authorization"):
        raise NoAuthorizationError("Missing Authorization Header")
    if (current_token().get("type") == "refresh") != refresh:
        raise WrongTokenError("Only refresh tokens are allowed" if refresh else "Only non-refresh tokens are allowed")


def _guard(refresh: bool, check: Callable[[], None] | None = None) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            _require(refresh)
            if check is not None:
                check()
            # Called as it is: every view is a plain function (a MethodView's passes its method
            # through ensure_sync itself), and asking again on each request costs an inspection.
            return fn(*args, **kwargs)

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
        if signed_in_user().role not in roles:
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

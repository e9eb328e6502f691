"""Who is calling, and what they may do. Routes use these, never the JWT library directly."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from flask_jwt_extended import current_user as _jwt_user
from flask_jwt_extended import get_jwt, jwt_required

from ..errors import Forbidden, NotFound
from ..extensions import db, jwt
from .models import User
from .revocation import is_revoked


@jwt.user_identity_loader
def _identity(user: User | str) -> str:
    return str(user.id) if isinstance(user, User) else str(user)


@jwt.user_lookup_loader
def _lookup(header: dict, payload: dict) -> User | None:
    try:
        return db.session.get(User, uuid.UUID(payload["sub"]))
    except (KeyError, ValueError):
        return None


@jwt.token_in_blocklist_loader
def _revoked(header: dict, payload: dict) -> bool:
    return is_revoked(payload)


def current_user() -> User:
    return _jwt_user._get_current_object()


def current_token() -> dict:
    """The verified claims of the token this request was made with."""
    return get_jwt()


def login_required(fn: Callable) -> Callable:
    """A valid, unrevoked access token of an existing user."""
    return jwt_required()(fn)


def refresh_token_required(fn: Callable) -> Callable:
    """A valid refresh token whose session was not ended; an access token is refused."""
    return jwt_required(refresh=True)(fn)


def roles_required(*roles: str) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        @functools.wraps(fn)
        @jwt_required()
        def wrapper(*args, **kwargs):
            if current_user().role not in roles:
                raise Forbidden(f"This needs the {' or '.join(roles)} role")
            return fn(*args, **kwargs)

        return wrapper

    return decorator


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

"""The rules of accounts and sessions. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from ..db_types import utcnow
from ..errors import Conflict, NotFound, Unauthorized, ValidationFailed
from ..extensions import db
from ..request_args import page_of
from . import lockout
from .models import RefreshToken, RevokedToken, TokenFamily, User
from .passwords import hash_password, needs_rehash, verify_password
from .revocation import revoke_access_token, revoke_families
from .rules import (
    ROLES,
    RuleViolation,
    check_password,
    normalize_email,
    normalize_password,
    normalize_username,
    username_key,
)
from .tokens import TokenPair, rotate, start_session

_TAKEN = {"username": "Username is already taken", "email": "Email address is already registered"}


def _invalid(field: str, message: str) -> ValidationFailed:
    # The same shape webargs gives schema errors, so clients read every 400 one way.
    return ValidationFailed(f"{field}: {message}", details={"json": {field: [message]}})


def _apply_rules(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except RuleViolation as exc:
        raise _invalid(exc.field, exc.message) from exc


def _ensure_available(*, name_key: str | None = None, email: str | None = None, owner: uuid.UUID | None = None) -> None:
    conditions = []
    if name_key is not None:
        conditions.append(User.username_key == name_key)
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return
    query = select(User.username_key, User.email).where(or_(*conditions))
    if owner is not None:
        query = query.where(User.id != owner)
    clashes = db.session.execute(query).all()
    if clashes:
        field = "username" if any(other_key == name_key for other_key, _ in clashes) else "email"
        raise Conflict(_TAKEN[field], details={"field": field})


def _flush_unique() -> None:
    """Flush; a name or address taken by a concurrent request between check and insert is a 409 too."""
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("Username or email already exists") from exc


def register(username: str, email: str, password: str, *, role: str = "user") -> User:
    name = _apply_rules(normalize_username, username)
    email = _apply_rules(normalize_email, email)
    password = normalize_password(password)
    _apply_rules(check_password, password, username=name, email=email)
    key = username_key(name)
    _ensure_available(name_key=key, email=email)
    user = User(username=name, username_key=key, email=email, password_hash=hash_password(password), role=role)
    db.session.add(user)
    _flush_unique()
    return user


def _check_password_guarded(user: User | None, password: str, attempt: lockout.Attempt) -> bool:
    ok = verify_password(user.password_hash if user else None, normalize_password(password))
    if not ok:
        return False
    lockout.succeeded(attempt)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(normalize_password(password))
    return True


def login(username: str, password: str, address: str) -> tuple[User, TokenPair]:
    """Check the credentials under brute-force protection and start a session."""
    attempt = lockout.begin(address, username)
    user = db.session.execute(select(User).where(User.username_key == username_key(username))).scalar_one_or_none()
    if not _check_password_guarded(user, password, attempt):
        raise Unauthorized("Invalid username or password", code="INVALID_CREDENTIALS")
    return user, start_session(user)


def refresh(user: User, token: dict) -> TokenPair:
    return rotate(user, token)


def logout(user: User, token: dict) -> None:
    """Revoke the presented access token and every token of its session."""
    revoke_access_token(token)
    revoke_families(user.id, "logout", only=uuid.UUID(token["family"]))


def update_profile(user: User, token: dict, changes: dict[str, Any], address: str) -> User:
    if not changes:
        raise ValidationFailed("No update data provided")
    name = _apply_rules(normalize_username, changes["username"]) if "username" in changes else user.username
    email = _apply_rules(normalize_email, changes["email"]) if "email" in changes else user.email
    new_password = normalize_password(changes["new_password"]) if "new_password" in changes else None
    current_password = changes.get("current_password")

    needs_current = new_password is not None or email != user.email
    if needs_current and current_password is None:
        raise _invalid("current_password", "Your current password is needed to change the email address or password")
    if new_password is not None:
        _apply_rules(check_password, new_password, username=name, email=email)
    if current_password is not None:
        attempt = lockout.begin(address, user.username)
        if not _check_password_guarded(user, current_password, attempt):
            raise Unauthorized("Current password is incorrect", code="INVALID_CREDENTIALS")
    if new_password is not None and verify_password(user.password_hash, new_password):
        raise _invalid("new_password", "The new password must differ from the current one")

    key = username_key(name)
    _ensure_available(
        name_key=key if key != user.username_key else None,
        email=email if email != user.email else None,
        owner=user.id,
    )
    user.username, user.username_key, user.email = name, key, email
    if "never_upload" in changes:
        user.never_upload = changes["never_upload"]
    if new_password is not None:
        user.password_hash = hash_password(new_password)
        # Whoever else holds a session (perhaps the reason for the change) is signed out.
        revoke_families(user.id, "password_change", keep=uuid.UUID(token["family"]))
    _flush_unique()
    return user


def list_users(page: int, per_page: int, role: str | None = None) -> tuple[list[User], int]:
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    return page_of(query.order_by(User.created_at, User.id), page, per_page)


def set_role(username: str, role: str) -> User:
    if role not in ROLES:
        raise ValidationFailed(f"Role must be one of {', '.join(ROLES)}")
    user = db.session.execute(select(User).where(User.username_key == username_key(username))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"No user named {username!r}")
    user.role = role
    db.session.flush()
    return user


def purge_expired() -> dict[str, int]:
    """Delete what can no longer matter: revocations and sessions of tokens that expired anyway."""
    now = utcnow()
    expired_families = select(TokenFamily.id).where(TokenFamily.expires_at <= now)
    counts = {
        "refresh_tokens": db.session.execute(
            delete(RefreshToken).where(RefreshToken.family_id.in_(expired_families))
        ).rowcount,
        "sessions": db.session.execute(delete(TokenFamily).where(TokenFamily.expires_at <= now)).rowcount,
        "revoked_tokens": db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now)).rowcount,
    }
    counts["login_failures"] = lockout.purge_expired()
    return counts

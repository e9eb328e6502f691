"""Issuing tokens, reading them back and rotating refresh tokens.

Every sign-in starts a family (a session). Each refresh retires the presented refresh token and
issues a new pair in the same family. A retired refresh token presented again means two parties
hold it, one of them a thief, so the whole family is revoked.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token, get_unverified_jwt_headers
from sqlalchemy import update

from ..db_types import new_uuid, utcnow
from ..errors import Unauthorized
from ..extensions import db
from . import token_cache
from .models import RefreshToken, TokenFamily, User
from .revocation import revoke_families

log = logging.getLogger(__name__)


class RefreshTokenReused(Unauthorized):
    code = "TOKEN_REUSED"
    message = "This refresh token was already used; every session of that sign-in has been ended"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds the access token is valid


def decode(encoded: str) -> tuple[dict, dict]:
    """A token's (header, claims), its signature and expiry verified; raises the library's errors.
    A token string once verified is remembered until it expires: the same string always verifies
    the same way, and decoding costs more than the rest of a small request."""
    found = token_cache.decoded(encoded)
    if found is None:
        claims = decode_token(encoded)
        found = get_unverified_jwt_headers(encoded), claims
        token_cache.remember_decoded(encoded, found, claims.get("exp"))
    return found


def _lifetimes() -> tuple[timedelta, timedelta]:
    return current_app.config["JWT_ACCESS_TOKEN_EXPIRES"], current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]


def _family_expiry(now: datetime) -> datetime:
    return now + max(_lifetimes())


def start_session(user: User) -> TokenPair:
    """A new family and its first token pair."""
    family = TokenFamily(id=new_uuid(), user_id=user.id, expires_at=_family_expiry(utcnow()))
    db.session.add(family)
    return _issue(user, family.id, str(uuid.uuid4()))


def _issue(user: User, family_id: uuid.UUID, refresh_jti: str) -> TokenPair:
    access_ttl, refresh_ttl = _lifetimes()
    claims = {"role": user.role, "family": str(family_id)}
    access = create_access_token(identity=user, additional_claims=claims, expires_delta=access_ttl)
    refresh = create_refresh_token(
        identity=user, additional_claims={**claims, "jti": refresh_jti}, expires_delta=refresh_ttl
    )
    now = utcnow()
    db.session.add(
        RefreshToken(jti=refresh_jti, user_id=user.id, family_id=family_id, issued_at=now, expires_at=now + refresh_ttl)
    )
    return TokenPair(access, refresh, int(access_ttl.total_seconds()))


def rotate(user: User, payload: dict) -> TokenPair:
    """Exchange a verified refresh token (its claims in `payload`) for a new pair."""
    family_id = uuid.UUID(payload["family"])
    now = utcnow()
    # Touching the family row first serialises this rotation against any revocation of the
    # same family and against a concurrent rotation with the same token.
    alive = db.session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.user_id == user.id, TokenFamily.revoked_at.is_(None))
        .values(expires_at=_family_expiry(now))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not alive:
        raise Unauthorized("Token has been revoked", code="TOKEN_REVOKED")
    new_jti = str(uuid.uuid4())
    retired = db.session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.jti == payload["jti"],
            RefreshToken.family_id == family_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=now, replaced_by=new_jti)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not retired:
        log.warning("refresh token reused: ending session %s of user %s", family_id, user.id)
        revoke_families(user.id, "refresh_token_reuse", only=family_id)
        raise RefreshTokenReused()
    return _issue(user, family_id, new_jti)

"""Which tokens are refused before they expire: revoked access tokens and revoked sessions.

The database is the truth: a `RevokedToken` row per revoked access token, `TokenFamily.revoked_at`
per ended session (logout, refresh-token reuse, password change). Redis, when configured, holds a
copy of each revocation that lives exactly as long as the token or session could, so a replayed
revoked token is refused without touching the database. A Redis miss is never trusted on its own:
the database answers it and a revocation found there is copied back, so a flushed or restarted
Redis forgets nothing and a Redis outage only costs speed. Each web process also remembers its answers for a moment
(scanner/auth/token_cache.py), and hears at once of the revocations it commits itself.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import and_, event, select, update
from sqlalchemy.orm import Session

from ..db_types import utcnow
from ..extensions import db
from . import generation, redis_store, token_cache
from .models import RefreshToken, RevokedToken, TokenFamily, User

_PENDING = "auth_revocations_for_redis"


def _uuid_claim(payload: dict, name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(payload[name]))
    except (KeyError, ValueError):
        return None


def _family_id(payload: dict) -> uuid.UUID | None:
    return _uuid_claim(payload, "family")


def _user_id(payload: dict) -> uuid.UUID | None:
    return _uuid_claim(payload, "sub")


def is_revoked(payload: dict) -> bool:
    """True when the token (or the session it belongs to) was revoked, or cannot be revoked.

    A refresh token is judged by its session only: a refresh token that was already rotated must
    reach the refresh endpoint, which treats its reuse as theft and ends the whole session.
    """
    family = _family_id(payload)
    if family is None or _user_id(payload) is None:  # a token that cannot be revoked is not honoured
        return True
    if token_cache.revoked_here(payload):
        return True
    now_in = generation.current()  # before the check: a change during it makes the answer stale
    if token_cache.known_good(payload, now_in):
        return False
    revoked = _check(payload, family)
    if not revoked:
        token_cache.remember_good(payload, now_in)
    return revoked


def _check(payload: dict, family: uuid.UUID) -> bool:
    jti = payload["jti"]
    check_jti = payload.get("type") != "refresh"
    keys = [redis_store.key("family", str(family))] + ([redis_store.key("jti", jti)] if check_jti else [])
    try:
        if any(redis_store.call(lambda r: r.mget(keys))):
            return True
    except redis_store.RedisUnavailable:
        pass

    # One query that also loads the user, so the identity lookup that follows costs nothing.
    query = (
        select(User, TokenFamily.id, TokenFamily.revoked_at, TokenFamily.expires_at)
        .outerjoin(TokenFamily, and_(TokenFamily.id == family, TokenFamily.user_id == User.id))
        .where(User.id == _user_id(payload))
    )
    if check_jti:
        query = query.add_columns(RevokedToken.jti).outerjoin(RevokedToken, RevokedToken.jti == jti)
    row = db.session.execute(query).first()
    if row is None:
        return False  # no such user: the identity lookup answers that, with its own message
    _, family_found, family_revoked_at, family_expires_at, *revoked_jti = row
    if family_found is None:
        return True
    revoked = False
    if family_revoked_at is not None:
        _known_revoked("family", str(family), family_expires_at)
        revoked = True
    if revoked_jti and revoked_jti[0] is not None:
        _known_revoked("jti", jti, datetime.fromtimestamp(payload["exp"], UTC))
        revoked = True
    return revoked


def _known_revoked(kind: str, value: str, until: datetime) -> None:
    """This process and Redis remember a revocation (`kind` "jti" or "family") until `until`."""
    milliseconds = int((until - utcnow()).total_seconds() * 1000)
    if milliseconds <= 0:
        return
    token_cache.remember_revoked(kind, value, milliseconds / 1000)
    key = redis_store.key(kind, value)
    with contextlib.suppress(redis_store.RedisUnavailable):
        redis_store.call(lambda r: r.set(key, b"1", px=milliseconds))


def _publish_after_commit(kind: str, value: str, until: datetime) -> None:
    """Tell this process and Redis of a revocation once the transaction that made it has committed."""
    db.session.info.setdefault(_PENDING, []).append((kind, value, until))


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for kind, value, until in pending:
        _known_revoked(kind, value, until)
    if pending:
        generation.changed()


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)


def revoke_access_token(payload: dict) -> None:
    expires_at = datetime.fromtimestamp(payload["exp"], UTC)
    if db.session.get(RevokedToken, payload["jti"]) is None:
        db.session.add(RevokedToken(jti=payload["jti"], user_id=uuid.UUID(payload["sub"]), expires_at=expires_at))
    _publish_after_commit("jti", payload["jti"], expires_at)


def revoke_families(
    user_id: uuid.UUID, reason: str, *, only: uuid.UUID | None = None, keep: uuid.UUID | None = None
) -> int:
    """End one session of a user (`only`), or all of them but `keep`. Returns how many ended."""
    now = utcnow()
    conditions = [TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None)]
    if only is not None:
        conditions.append(TokenFamily.id == only)
    if keep is not None:
        conditions.append(TokenFamily.id != keep)
    families = db.session.execute(select(TokenFamily.id, TokenFamily.expires_at).where(*conditions)).all()
    if not families:
        return 0
    ids = [family_id for family_id, _ in families]
    db.session.execute(
        update(TokenFamily)
        .where(TokenFamily.id.in_(ids), TokenFamily.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id.in_(ids), RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    for family_id, expires_at in families:
        _publish_after_commit("family", str(family_id), expires_at)
    return len(families)

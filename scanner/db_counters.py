"""Counters in windows, kept in the database (`login_failures`, the table of windowed counts):
sign-in protection counts every attempt here, and the rate limiter counts here while Redis is
away. A window begins with its first count; each count is one atomic upsert, so parallel requests
of any process cannot slip past a threshold between a read and a write."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .auth.models import LoginFailure
from .db_types import UTCDateTime, utcnow

_TABLE = LoginFailure.__table__
KEY_LENGTH = _TABLE.c.key.type.length


def _upsert(conn: Connection, key: str, values: dict, on_conflict: dict) -> tuple[int, float]:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_TABLE)
        .values(key=key, **values)
        .on_conflict_do_update(index_elements=[_TABLE.c.key], set_=on_conflict)
        .returning(_TABLE.c.count, _TABLE.c.expires_at)
    )
    count, expires_at = conn.execute(statement).one()
    return count, (expires_at - utcnow()).total_seconds()


def hit(conn: Connection, key: str, window: timedelta) -> tuple[int, float]:
    """Count one; returns the count in the current window and the seconds the window has left."""
    now = utcnow()
    fresh_until = now + window
    window_over = _TABLE.c.expires_at <= now
    return _upsert(
        conn,
        key[:KEY_LENGTH],
        {"count": 1, "expires_at": fresh_until},
        {
            "count": case((window_over, 1), else_=_TABLE.c.count + 1),
            "expires_at": case((window_over, literal(fresh_until, UTCDateTime())), else_=_TABLE.c.expires_at),
        },
    )


def set_for(conn: Connection, key: str, lasting: timedelta) -> None:
    """A marker (count 1) that lasts this long from now."""
    until = utcnow() + lasting
    _upsert(conn, key[:KEY_LENGTH], {"count": 1, "expires_at": until}, {"count": 1, "expires_at": until})


def seconds_left(conn: Connection, key: str) -> float:
    expires_at = conn.execute(select(_TABLE.c.expires_at).where(_TABLE.c.key == key)).scalar_one_or_none()
    return 0.0 if expires_at is None else (expires_at - utcnow()).total_seconds()


def give_back(conn: Connection, key: str) -> None:
    conn.execute(update(LoginFailure).where(LoginFailure.key == key).values(count=LoginFailure.count - 1))
    conn.execute(delete(LoginFailure).where(LoginFailure.key == key, LoginFailure.count <= 0))


def forget(conn: Connection, key: str) -> None:
    conn.execute(delete(LoginFailure).where(LoginFailure.key == key))


def purge_expired(session) -> int:
    """Forget windows that are over. Part of the caller's transaction."""
    return session.execute(delete(LoginFailure).where(LoginFailure.expires_at <= utcnow())).rowcount

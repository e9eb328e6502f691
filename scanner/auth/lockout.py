"""Brute-force protection: failed sign-ins counted per client address and per account name.

An attempt first reserves a slot on both counters with one atomic increment each, so parallel
guesses cannot slip past the threshold between a check and an update. A success gives the slots
back (the account name's counter is cleared, the address's slot returned); a failure keeps them.
Past the threshold an attempt is refused with 429 and Retry-After, even with the right password,
until the window that began with the first failure has passed.

Counters live in Redis when it is configured (a Lua script: INCR and PEXPIRE together) and in
the `login_failures` table otherwise (one upsert), so every web process shares them either way.
Counter writes use their own transaction: a failed attempt must count although its request fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import case, delete, literal, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db_types import UTCDateTime, utcnow
from ..errors import RateLimited
from ..extensions import db
from . import redis_store
from .models import LoginFailure
from .rules import username_key

log = logging.getLogger(__name__)

_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Attempt:
    address_key: str
    name_key: str


def _locked(key: str, seconds_left: float) -> RateLimited:
    log.info("sign-in refused for %s: too many failures, %.0fs left in the window", key, seconds_left)
    return RateLimited(
        "Too many failed sign-in attempts; wait before trying again",
        retry_after=seconds_left,
        code="TOO_MANY_LOGIN_ATTEMPTS",
    )


def begin(address: str, username: str) -> Attempt:
    """Reserve one attempt for this address and account name, or raise 429."""
    cfg = current_app.config
    attempt = Attempt(f"ip:{address}", f"user:{username_key(username)[:256]}")
    count, seconds_left = _hit(attempt.address_key)
    if count > cfg["LOGIN_MAX_FAILURES_PER_IP"]:
        raise _locked(attempt.address_key, seconds_left)
    count, seconds_left = _hit(attempt.name_key)
    if count > cfg["LOGIN_MAX_FAILURES"]:
        _give_back(attempt.address_key)  # no password was tried
        raise _locked(attempt.name_key, seconds_left)
    return attempt


def succeeded(attempt: Attempt) -> None:
    _clear(attempt.name_key)
    _give_back(attempt.address_key)


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])


def _hit(name: str) -> tuple[int, float]:
    """Count one attempt; returns the count in the current window and the seconds it has left."""
    window_ms = int(_window().total_seconds() * 1000)
    try:
        count, ttl_ms = redis_store.call(
            lambda r: r.register_script(_HIT)(keys=[redis_store.key("login", name)], args=[window_ms])
        )
        return int(count), int(ttl_ms) / 1000
    except redis_store.RedisUnavailable:
        return _hit_database(name)


def _give_back(name: str) -> None:
    try:
        redis_store.call(lambda r: r.register_script(_GIVE_BACK)(keys=[redis_store.key("login", name)]))
    except redis_store.RedisUnavailable:
        with db.engine.begin() as conn:
            conn.execute(update(LoginFailure).where(LoginFailure.key == name).values(count=LoginFailure.count - 1))
            conn.execute(delete(LoginFailure).where(LoginFailure.key == name, LoginFailure.count <= 0))


def _clear(name: str) -> None:
    try:
        redis_store.call(lambda r: r.delete(redis_store.key("login", name)))
    except redis_store.RedisUnavailable:
        with db.engine.begin() as conn:
            conn.execute(delete(LoginFailure).where(LoginFailure.key == name))


def _hit_database(name: str) -> tuple[int, float]:
    now = utcnow()
    fresh_until = now + _window()
    table = LoginFailure.__table__
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    window_over = table.c.expires_at <= now
    statement = (
        insert(table)
        .values(key=name, count=1, expires_at=fresh_until)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((window_over, 1), else_=table.c.count + 1),
                "expires_at": case((window_over, literal(fresh_until, UTCDateTime())), else_=table.c.expires_at),
            },
        )
        .returning(table.c.count, table.c.expires_at)
    )
    with db.engine.begin() as conn:
        count, expires_at = conn.execute(statement).one()
    return count, (expires_at - now).total_seconds()


def purge_expired() -> int:
    """Forget windows that are over (the Redis keys expire on their own). Part of the caller's
    transaction, unlike the counting above."""
    return db.session.execute(delete(LoginFailure).where(LoginFailure.expires_at <= utcnow())).rowcount

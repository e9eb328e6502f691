"""Sign-in protection that stops guessing without locking out the innocent.

Four counters, each in a window that begins with its first count:

- **(account, address)**: `LOGIN_MAX_FAILURES` failures lock that account *from that address*
  for the rest of `LOGIN_WINDOW_SECONDS`, the right password included. A colleague behind the
  same office address, or the owner from anywhere else, is not affected.
- **account, across addresses**: past `LOGIN_ACCOUNT_MAX_FAILURES` failures, each further
  failure opens a delay that doubles (from `LOGIN_ACCOUNT_DELAY_SECONDS` up to the window),
  during which only addresses that have already failed on the account are refused. The right
  password from an address with a clean record is never refused for someone else's failures.
- **address, across accounts**: past `LOGIN_MAX_FAILURES_PER_IP` failures (password spraying,
  credential stuffing) that address may only sign in to accounts that have signed in from it
  before (`KNOWN_ADDRESS_DAYS`): an office's analysts keep working while its address is noisy.
- **attempts per address**: `AUTH_RATE_LIMIT` sign-in attempts, right or wrong.

An attempt reserves its counts before the password is checked (one atomic upsert each), so
parallel guesses cannot slip past a threshold between a check and an update; a success gives
the reservations back. Every count lives in the database, in its own transaction: a failed
attempt counts although its request fails, and an outage of Redis neither grants extra guesses
nor forgets a lock, nor splits a limit into one per process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from limits import parse as parse_limit
from sqlalchemy import Connection, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db_types import UTCDateTime, utcnow
from ..errors import RateLimited
from ..extensions import db
from .models import LoginFailure
from .rules import username_key

log = logging.getLogger(__name__)

KNOWN_ADDRESS_DAYS = 30
_TABLE = LoginFailure.__table__


@dataclass(frozen=True)
class Attempt:
    pair: str
    account: str
    address: str
    known: str


def _keys(address: str, username: str) -> Attempt:
    account, address = username_key(username)[:256], address[:45]  # 45: the longest IPv6 text
    return Attempt(
        pair=f"pair:{account}:{address}",
        account=f"user:{account}",
        address=f"ip:{address}",
        known=f"known:{account}:{address}",
    )


def _refused(message: str, seconds_left: float, code: str = "TOO_MANY_LOGIN_ATTEMPTS") -> RateLimited:
    return RateLimited(message, retry_after=seconds_left, code=code)


def begin(address: str, username: str) -> Attempt:
    """Reserve one attempt for this account from this address, or raise 429 with Retry-After."""
    cfg = current_app.config
    attempt = _keys(address, username)
    window = timedelta(seconds=cfg["LOGIN_WINDOW_SECONDS"])
    with db.engine.begin() as conn:
        refusal = _reserve(conn, attempt, window, cfg)
    if refusal is not None:
        log.info("sign-in refused (%s): %s", refusal.code, refusal.message)
        raise refusal
    return attempt


def _reserve(conn: Connection, attempt: Attempt, window: timedelta, cfg) -> RateLimited | None:
    rate = parse_limit(cfg["AUTH_RATE_LIMIT"])
    count, left = _hit(conn, f"rate:{attempt.address.removeprefix('ip:')}", timedelta(seconds=rate.get_expiry()))
    if count > rate.amount:
        return _refused("Too many sign-in attempts from your address", left, "RATE_LIMIT_EXCEEDED")

    pair_count, left = _hit(conn, attempt.pair, window)
    if pair_count > cfg["LOGIN_MAX_FAILURES"]:
        return _refused("Too many failed sign-ins to this account from your address; wait before trying again", left)

    delay_left = _seconds_left(conn, f"delay:{attempt.account}")
    if pair_count > 1 and delay_left > 0:
        _give_back(conn, attempt.pair)
        return _refused("This account is receiving many failed sign-ins; wait before trying again", delay_left)

    address_count, left = _hit(conn, attempt.address, window)
    if address_count > cfg["LOGIN_MAX_FAILURES_PER_IP"] and _seconds_left(conn, attempt.known) <= 0:
        _give_back(conn, attempt.pair)
        _give_back(conn, attempt.address)
        return _refused("Too many failed sign-ins from your address; wait before trying again", left)

    account_count, _ = _hit(conn, attempt.account, window)
    over = account_count - cfg["LOGIN_ACCOUNT_MAX_FAILURES"]
    if over > 0:
        delay = min(cfg["LOGIN_ACCOUNT_DELAY_SECONDS"] * 2 ** min(over - 1, 32), window.total_seconds())
        _set(conn, f"delay:{attempt.account}", timedelta(seconds=delay))
    return None


def succeeded(attempt: Attempt) -> None:
    """The password was right: this address stops counting against the account, the slots
    reserved on the account and the address are given back, and the address is remembered as
    one this account signs in from."""
    with db.engine.begin() as conn:
        conn.execute(delete(LoginFailure).where(LoginFailure.key == attempt.pair))
        _give_back(conn, attempt.account)
        _give_back(conn, attempt.address)
        _set(conn, attempt.known, timedelta(days=KNOWN_ADDRESS_DAYS))


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


def _hit(conn: Connection, key: str, window: timedelta) -> tuple[int, float]:
    """Count one; returns the count in the current window and the seconds the window has left."""
    now = utcnow()
    fresh_until = now + window
    window_over = _TABLE.c.expires_at <= now
    return _upsert(
        conn,
        key,
        {"count": 1, "expires_at": fresh_until},
        {
            "count": case((window_over, 1), else_=_TABLE.c.count + 1),
            "expires_at": case((window_over, literal(fresh_until, UTCDateTime())), else_=_TABLE.c.expires_at),
        },
    )


def _set(conn: Connection, key: str, lasting: timedelta) -> None:
    until = utcnow() + lasting
    _upsert(conn, key, {"count": 1, "expires_at": until}, {"count": 1, "expires_at": until})


def _seconds_left(conn: Connection, key: str) -> float:
    expires_at = conn.execute(select(_TABLE.c.expires_at).where(_TABLE.c.key == key)).scalar_one_or_none()
    return 0.0 if expires_at is None else (expires_at - utcnow()).total_seconds()


def _give_back(conn: Connection, key: str) -> None:
    conn.execute(update(LoginFailure).where(LoginFailure.key == key).values(count=LoginFailure.count - 1))
    conn.execute(delete(LoginFailure).where(LoginFailure.key == key, LoginFailure.count <= 0))


def purge_expired() -> int:
    """Forget windows that are over. Part of the caller's transaction, unlike the counting above."""
    return db.session.execute(delete(LoginFailure).where(LoginFailure.expires_at <= utcnow())).rowcount

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
- **attempts per address**: `AUTH_RATE_LIMIT` sign-in attempts, right or wrong, in each of its
  windows; the rate-limit headers of the sign-in routes report them (scanner/rate_limits.py).

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
from limits import parse_many
from sqlalchemy import Connection

from .. import db_counters, rate_limits
from ..errors import RateLimited
from ..extensions import db
from .rules import username_key

log = logging.getLogger(__name__)

KNOWN_ADDRESS_DAYS = 30


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


def _attempt_rate(conn: Connection, attempt: Attempt, cfg) -> RateLimited | None:
    """Count the attempt in each window of AUTH_RATE_LIMIT, and tell the rate-limit headers."""
    waits = []
    for rate in parse_many(cfg["AUTH_RATE_LIMIT"]):
        seconds = rate.get_expiry()
        count, left = db_counters.hit(
            conn, f"rate:{seconds}:{attempt.address.removeprefix('ip:')}", timedelta(seconds=seconds)
        )
        rate_limits.report(rate.amount, seconds, count, left)
        if count > rate.amount:
            waits.append(left)
    if waits:
        return _refused("Too many sign-in attempts from your address", max(waits), "RATE_LIMIT_EXCEEDED")
    return None


def _reserve(conn: Connection, attempt: Attempt, window: timedelta, cfg) -> RateLimited | None:
    refused = _attempt_rate(conn, attempt, cfg)
    if refused is not None:
        return refused

    pair_count, left = db_counters.hit(conn, attempt.pair, window)
    if pair_count > cfg["LOGIN_MAX_FAILURES"]:
        return _refused("Too many failed sign-ins to this account from your address; wait before trying again", left)

    delay_left = db_counters.seconds_left(conn, f"delay:{attempt.account}")
    if pair_count > 1 and delay_left > 0:
        db_counters.give_back(conn, attempt.pair)
        return _refused("This account is receiving many failed sign-ins; wait before trying again", delay_left)

    address_count, left = db_counters.hit(conn, attempt.address, window)
    if address_count > cfg["LOGIN_MAX_FAILURES_PER_IP"] and db_counters.seconds_left(conn, attempt.known) <= 0:
        db_counters.give_back(conn, attempt.pair)
        db_counters.give_back(conn, attempt.address)
        return _refused("Too many failed sign-ins from your address; wait before trying again", left)

    account_count, _ = db_counters.hit(conn, attempt.account, window)
    over = account_count - cfg["LOGIN_ACCOUNT_MAX_FAILURES"]
    if over > 0:
        delay = min(cfg["LOGIN_ACCOUNT_DELAY_SECONDS"] * 2 ** min(over - 1, 32), window.total_seconds())
        db_counters.set_for(conn, f"delay:{attempt.account}", timedelta(seconds=delay))
    return None


def succeeded(attempt: Attempt) -> None:
    """The password was right: this address stops counting against the account, the slots
    reserved on the account and the address are given back, and the address is remembered as
    one this account signs in from."""
    with db.engine.begin() as conn:
        db_counters.forget(conn, attempt.pair)
        db_counters.give_back(conn, attempt.account)
        db_counters.give_back(conn, attempt.address)
        db_counters.set_for(conn, attempt.known, timedelta(days=KNOWN_ADDRESS_DAYS))


def purge_expired() -> int:
    """Forget windows that are over. Part of the caller's transaction, unlike the counting above."""
    return db_counters.purge_expired(db.session)

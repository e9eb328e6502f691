"""The deployment's auth generation: a random value in Redis that changes whenever a token is
revoked or a user row changes, in any process.

A web process that checked a token (or loaded a user) notes the generation it read *before* the
check; the answer stays good for as long as the generation has not changed, up to
`AUTH_CACHE_TRUST_SECONDS`. Each process re-reads the generation at most every
`AUTH_CACHE_SECONDS`, so a revocation made anywhere reaches every process within that delay, while
a token used again and again costs no Redis or database round trip of its own.

Redis flushed or restarted: the key is gone, the next reader writes a new value, and everything
remembered before is checked again. A change made while Redis cannot be written is owed: this
process writes a new generation as soon as Redis answers again (before trusting anything itself),
and `AUTH_CACHE_TRUST_SECONDS` bounds what a process that died owing one leaves behind. Without
Redis (embedded mode) there is no generation, and answers are trusted for `AUTH_CACHE_SECONDS`.
"""

from __future__ import annotations

import threading
import time
import uuid

from flask import current_app, has_app_context

from . import redis_store

_lock = threading.Lock()
_read: tuple[float, str | None] = (float("-inf"), None)  # (when, the value read then)
_owed = False


def _key() -> str:
    return redis_store.key("generation")


def current() -> str | None:
    """The generation, as read at most `AUTH_CACHE_SECONDS` ago; None when Redis cannot say."""
    global _read
    if not has_app_context():
        return None
    now = time.monotonic()
    read_at, value = _read
    if now - read_at < float(current_app.config.get("AUTH_CACHE_SECONDS", 0)) and not _owed:
        return value
    if _owed and not _pay_owed():
        return None
    try:
        value = redis_store.call(_get_or_start)
    except redis_store.RedisUnavailable:
        value = None
    _read = (now, value)
    return value


def _get_or_start(r) -> str:
    found = r.get(_key())
    if found is None:  # a new Redis, or one flushed: nothing remembered before counts
        fresh = uuid.uuid4().hex
        found = fresh.encode() if r.set(_key(), fresh, nx=True) else r.get(_key()) or fresh.encode()
    return found.decode()


def changed() -> None:
    """A token was revoked or a user row changed (committed): everything remembered anywhere
    under the old generation is checked again."""
    global _owed, _read
    if not current_app.config.get("REDIS_URL"):
        return
    try:
        redis_store.call(lambda r: r.set(_key(), uuid.uuid4().hex))
    except redis_store.RedisUnavailable:
        _owed = True
    _read = (float("-inf"), None)


def _pay_owed() -> bool:
    global _owed
    with _lock:
        if _owed:
            try:
                redis_store.call(lambda r: r.set(_key(), uuid.uuid4().hex))
            except redis_store.RedisUnavailable:
                return False
            _owed = False
    return True

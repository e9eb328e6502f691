"""The deployment's auth generation: a random value in Redis that changes whenever a token is
revoked or a user row changes, in any process.

A web process that checked a token (or loaded a user) notes the generation it read *before* the
check (as a local epoch); the answer stays good for as long as the generation has not changed, up to
`AUTH_CACHE_TRUST_SECONDS`. Each process re-reads the generation at most every
`AUTH_CACHE_SECONDS`, so a revocation made anywhere reaches every process within that delay, while
a token used again and again costs no Redis or database round trip of its own.

Redis flushed or restarted: the key is gone (the next reader writes a new value) or back at an
older value from a snapshot, under a new server run id; either way what is read differs from
what was, and everything remembered before is checked again. A change made while Redis cannot be written is owed: this
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
# What this process saw: the value read, when, and an epoch that moves whenever the value it reads
# differs from the last one (including Redis coming back from a snapshot with an older value) or
# this process changes it. Answers are stamped with the epoch, never the value.
_value: str | None = None
_read_at = float("-inf")
_epoch = 0
_owed = False


def _key() -> str:
    return redis_store.key("generation")


def current() -> int | None:
    """The epoch of the generation as read at most `AUTH_CACHE_SECONDS` ago; None when Redis
    cannot say (then nothing is trusted longer than AUTH_CACHE_SECONDS)."""
    global _value, _read_at, _epoch
    if not has_app_context():
        return None
    now = time.monotonic()
    if now - _read_at < float(current_app.config.get("AUTH_CACHE_SECONDS", 0)) and not _owed:
        return _epoch if _value is not None else None
    if _owed and not _pay_owed():
        return None
    began = _epoch
    try:
        value = redis_store.call(_get_or_start)
    except redis_store.RedisUnavailable:
        value = None
    with _lock:
        if _epoch != began:  # this process changed it meanwhile: what was read may be older
            return None
        if value != _value:
            _value, _epoch = value, _epoch + 1
        _read_at = now
        return _epoch if value is not None else None


def _get_or_start(r) -> str:
    """The generation, with the id of the Redis server run that holds it: a restart from a snapshot
    or a failover to a replica may bring back a value this process saw before the change it
    missed, never the same run id."""
    pipe = r.pipeline(transaction=False)
    pipe.get(_key())
    pipe.info("server")
    found, server = pipe.execute()
    if found is None:  # a new Redis, or one flushed: nothing remembered before counts
        fresh = uuid.uuid4().hex
        found = fresh.encode() if r.set(_key(), fresh, nx=True) else r.get(_key()) or fresh.encode()
    return f"{server.get('run_id', '')}:{found.decode()}"


def changed() -> None:
    """A token was revoked or a user row changed (committed): everything remembered anywhere
    under the old generation is checked again."""
    global _owed, _read_at, _epoch
    with _lock:
        _epoch += 1
        _read_at = float("-inf")
    if current_app.config.get("REDIS_URL"):
        _owed = True
        _pay_owed()


def owed() -> bool:
    """A change this process could not write to Redis yet."""
    return _owed


def _pay_owed() -> bool:
    """Write a new generation if one is owed; False while Redis cannot take it."""
    global _owed
    with _lock:
        if _owed:
            try:
                redis_store.call(lambda r: r.set(_key(), uuid.uuid4().hex))
            except redis_store.RedisUnavailable:
                return False
            _owed = False
    return True

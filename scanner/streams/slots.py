"""How many event streams may be open at once, and who holds them.

Three caps, checked in this order when a stream opens:
- per process (`STREAM_MAX_PER_PROCESS`), counted in memory: what one web process can carry;
- in total across processes (`STREAM_MAX_TOTAL`), a Redis sorted set of leases: each open stream
  renews its lease at every heartbeat, so a process that dies with streams open frees their
  places within `lease_seconds`. Without Redis (embedded mode: one machine, usually one web
  process) the per-process cap stands alone; a Redis outage does the same for a while;
- per user (`STREAM_MAX_PER_USER`), rows in the database shared by every process.
Over either of the first two the service is full (503); over the last one the user is (429).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from flask import current_app
from sqlalchemy import delete, select

from .. import events
from ..db_types import new_uuid, utcnow
from ..errors import RateLimited, ServiceBusy
from ..extensions import db
from .models import StreamSlot

SLOT_GRACE_SECONDS = 60
# Leases are kept by Redis's clock, so web processes on machines whose clocks differ agree.
_ADMIT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
return 1
"""
# Every lease this process holds, in one call: ARGV[1] is the lease, the rest are slot ids.
_RENEW = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local expires = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[i]) end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])))
return 1
"""

_lock = threading.Lock()
_open_here = 0
_held_here: set[str] = set()  # slot ids whose lease this process renews
_renewed_at = float("-inf")
_digests: dict[str, str] = {}


@dataclass(frozen=True)
class Slot:
    id: uuid.UUID
    user_id: uuid.UUID


def open_here() -> int:
    """Streams open in this process."""
    return _open_here


def lease_seconds() -> float:
    """How long a stream's place in the total count lasts unless renewed (at each heartbeat)."""
    return 3 * current_app.config["STREAM_HEARTBEAT_SECONDS"] + 5


def _leases_key() -> str:
    return f"{current_app.config['CACHE_KEY_PREFIX']}streams:leases"


def _busy(what: str, cap: int) -> ServiceBusy:
    return ServiceBusy(
        f"Too many event streams are open {what}; try again shortly or poll the status instead",
        retry_after=current_app.config["STREAM_HEARTBEAT_SECONDS"],
        details={"max_streams": cap},
    )


def acquire(user_id: uuid.UUID) -> Slot:
    """Take a place for one stream, or raise ServiceBusy (503) or RateLimited (429)."""
    global _open_here
    cfg = current_app.config
    slot = Slot(new_uuid(), user_id)
    with _lock:
        if _open_here >= cfg["STREAM_MAX_PER_PROCESS"]:
            raise _busy("in this web process", cfg["STREAM_MAX_PER_PROCESS"])
        _open_here += 1
    try:
        total = cfg["STREAM_MAX_TOTAL"]
        admitted = events.shared_redis(
            lambda r: _script(r, _ADMIT, _leases_key(), str(slot.id), total, lease_seconds()), "admitting a stream"
        )
        if admitted == 0:
            raise _busy("in the service", total)
        with _lock:
            _held_here.add(str(slot.id))
        _take_user_slot(slot)
    except BaseException:
        _release_here(slot)
        raise
    return slot


def renew(slot: Slot) -> None:
    """Called at each stream's heartbeat. The first stream to beat in half a heartbeat renews the
    leases of every stream of this process at once, so a process pays a round trip or two per
    heartbeat however many streams it holds (a lease outlasts three heartbeats)."""
    global _renewed_at
    now = time.monotonic()
    with _lock:
        if now - _renewed_at < current_app.config["STREAM_HEARTBEAT_SECONDS"] / 2 or not _held_here:
            return
        _renewed_at = now
        held = sorted(_held_here)
    events.shared_redis(
        lambda r: _script(r, _RENEW, _leases_key(), lease_seconds(), *held), "renewing the streams' leases"
    )


def _script(r: redis.Redis, script: str, key: str, *args: object) -> object:
    """Run a Lua script by its digest (the text goes over the wire only when Redis lacks it)."""
    digest = _digests.get(script) or _digests.setdefault(script, hashlib.sha1(script.encode()).hexdigest())  # noqa: S324
    try:
        return r.evalsha(digest, 1, key, *args)
    except redis.exceptions.NoScriptError:
        return r.eval(script, 1, key, *args)


def release(slot: Slot) -> None:
    """Give every place back. Safe to call once per slot, however the stream ended."""
    try:
        db.session.execute(delete(StreamSlot).where(StreamSlot.id == slot.id))
        db.session.commit()
    finally:
        _release_here(slot)


def _release_here(slot: Slot) -> None:
    global _open_here
    with _lock:
        _open_here -= 1
        _held_here.discard(str(slot.id))
    events.shared_redis(lambda r: r.zrem(_leases_key(), str(slot.id)), "releasing a stream's lease")


def _take_user_slot(slot: Slot) -> None:
    """Slots are ranked by opening time after each is committed, so two streams opened at once
    cannot both take the user's last slot."""
    cfg = current_app.config
    now = utcnow()
    user_id = slot.user_id
    db.session.execute(delete(StreamSlot).where(StreamSlot.user_id == user_id, StreamSlot.expires_at < now))
    expires = now + timedelta(seconds=cfg["STREAM_MAX_SECONDS"] + SLOT_GRACE_SECONDS)
    db.session.add(StreamSlot(id=slot.id, user_id=user_id, opened_at=now, expires_at=expires))
    db.session.commit()
    cap = cfg["STREAM_MAX_PER_USER"]
    ranked = db.session.scalars(
        select(StreamSlot.id)
        .where(StreamSlot.user_id == user_id, StreamSlot.expires_at >= now)
        .order_by(StreamSlot.opened_at, StreamSlot.id)
        .limit(cap)
    ).all()
    if slot.id not in ranked:
        db.session.execute(delete(StreamSlot).where(StreamSlot.id == slot.id))
        db.session.commit()
        raise RateLimited(
            f"At most {cap} open event streams per user: close one before opening another",
            retry_after=cfg["STREAM_HEARTBEAT_SECONDS"],
            details={"max_streams": cap},
        )

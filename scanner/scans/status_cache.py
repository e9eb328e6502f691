"""A web process's memory of the scan statuses it read: clients poll a scan's status more than
they ask anything else, and a remembered one is answered without a database query.

An entry is trusted only while this process hears the workers' events as they happen (Redis
pub/sub, scanner/events.py). Every step of a scan publishes an event after its commit, and the
scan's entry is dropped as the event arrives. A read whose query may have run before a commit
whose event came during the read keeps nothing: an entry is stored only if no scan event arrived
since its query began. Losing the subscription (or gaining it) drops everything; while it is down,
and always without Redis, every read is a query.

A change that publishes no event (a file deleted with its scans by another web process, a waiting
scan woken by another's verdict) shows within `STATUS_CACHE_SECONDS` (2 s by default, the same
bound as a revoked token's), after which an entry is read again. Bounded to
`STATUS_CACHE_MAX_ENTRIES` scans, the oldest leaving first.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import NamedTuple

from flask import current_app

from .. import events


class Status(NamedTuple):
    user_id: uuid.UUID  # whose scan it is
    body: str  # the answer's JSON


_lock = threading.Lock()
_entries: dict[uuid.UUID, tuple[float, Status]] = {}  # scan id -> (good until, its status)
_heard = 0  # scan events heard (and losses of the subscription): a read that saw it move keeps nothing


def _observe(channel: bytes | None) -> None:
    kind, _, ident = (channel or b"").rpartition(b":")
    if channel is None:
        drop(None)
    elif kind.endswith(b":scan"):
        with contextlib.suppress(ValueError):  # not a scan id: nothing of ours
            drop(uuid.UUID(ident.decode()))


events.observe(_observe)


def drop(scan_id: uuid.UUID | None) -> None:
    """Forget a scan (None: every scan), and keep nothing read before now."""
    global _heard
    with _lock:
        _heard += 1
        if scan_id is None:
            _entries.clear()
        else:
            _entries.pop(scan_id, None)


def get(scan_id: uuid.UUID) -> Status | None:
    """The status remembered for this scan, if it is still good."""
    found = _entries.get(scan_id)
    if found is None or found[0] <= time.monotonic():
        return None
    return found[1]


def reading() -> int | None:
    """Call before the query whose answer `keep` may remember: what it needs to know that no event
    came meanwhile. None when nothing may be remembered (no events are heard, or the cache is off)."""
    if current_app.config["STATUS_CACHE_SECONDS"] <= 0 or not events.hearing():
        return None
    return _heard


def keep(scan_id: uuid.UUID, status: Status, began: int | None) -> None:
    """Remember `status`, read by a query that began at `began` (from `reading()`)."""
    if began is None:
        return
    config = current_app.config
    until = time.monotonic() + config["STATUS_CACHE_SECONDS"]
    with _lock:
        if _heard != began:
            return
        _entries.pop(scan_id, None)
        _entries[scan_id] = (until, status)
        while len(_entries) > config["STATUS_CACHE_MAX_ENTRIES"]:
            del _entries[next(iter(_entries))]

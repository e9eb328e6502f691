"""Server-Sent Events: a lookup, a scan or a bulk job followed live.

Each stream sends an event whenever what it follows changes, a comment line as a heartbeat when
nothing was sent for `STREAM_HEARTBEAT_SECONDS` (so proxies keep the connection and a vanished
client is noticed), and a final event: `complete`, or `timeout` after `STREAM_MAX_SECONDS` (the
client reconnects if it still cares). It wakes on `scanner.events` and re-reads the database, which
is the truth; between reads it holds no database connection.

Every open stream holds a web thread (gunicorn's gthread workers), so a user may have at most
`STREAM_MAX_PER_USER` open at once, counted across all web processes in the database.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Hashable, Iterator
from datetime import timedelta
from typing import Any

from flask import Response, current_app, stream_with_context
from sqlalchemy import delete, select

from .. import events
from ..db_types import new_uuid, utcnow
from ..errors import RateLimited
from ..extensions import db
from ..results.report import FINISHED, scan_verdict
from ..scans.models import Scan
from . import bulk, services, views
from .models import JOB_FINISHED, BulkJob, Lookup, StreamSlot

# A snapshot: (what decides whether anything changed, the event's data).
Snapshot = tuple[Hashable, dict[str, Any]]
SLOT_GRACE_SECONDS = 60
RECONNECT_MS = 3000


def sse(event: str, data: Any) -> str:
    """One event; `data` as JSON on a single line."""
    return f"event: {event}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n"


def open_slot(user_id: uuid.UUID) -> uuid.UUID:
    """Take one of the user's stream slots or raise RateLimited. Slots are ranked by opening time
    after each is committed, so two streams opened at once cannot both take the last slot."""
    cfg = current_app.config
    now = utcnow()
    db.session.execute(delete(StreamSlot).where(StreamSlot.user_id == user_id, StreamSlot.expires_at < now))
    slot_id = new_uuid()
    expires = now + timedelta(seconds=cfg["STREAM_MAX_SECONDS"] + SLOT_GRACE_SECONDS)
    db.session.add(StreamSlot(id=slot_id, user_id=user_id, opened_at=now, expires_at=expires))
    db.session.commit()
    cap = cfg["STREAM_MAX_PER_USER"]
    ranked = db.session.scalars(
        select(StreamSlot.id)
        .where(StreamSlot.user_id == user_id, StreamSlot.expires_at >= now)
        .order_by(StreamSlot.opened_at, StreamSlot.id)
        .limit(cap)
    ).all()
    if slot_id not in ranked:
        close_slot(slot_id)
        raise RateLimited(
            f"At most {cap} open event streams per user: close one before opening another",
            retry_after=cfg["STREAM_HEARTBEAT_SECONDS"],
            details={"max_streams": cap},
        )
    return slot_id


def close_slot(slot_id: uuid.UUID) -> None:
    db.session.execute(delete(StreamSlot).where(StreamSlot.id == slot_id))
    db.session.commit()


def follow(
    kind: str,
    ident: uuid.UUID,
    snapshot: Callable[[], Snapshot],
    is_final: Callable[[dict[str, Any]], bool],
    event: str,
) -> Iterator[str]:
    """Events for one object until it is final or the stream's time is up."""
    cfg = current_app.config
    heartbeat, limit = cfg["STREAM_HEARTBEAT_SECONDS"], cfg["STREAM_MAX_SECONDS"]
    started = time.monotonic()
    subscription = events.subscribe(kind, ident)  # before the first read, so no change slips between
    try:
        last: Hashable = object()
        last_sent = time.monotonic()
        while True:
            signature, data = snapshot()
            db.session.close()  # no connection is held while waiting
            if signature != last:
                yield sse(event, data)
                last, last_sent = signature, time.monotonic()
            if is_final(data):
                yield sse("complete", data)
                return
            now = time.monotonic()
            if now - started >= limit:
                yield sse("timeout", {"message": f"Stream closed after {limit:g} seconds; reconnect to go on"})
                return
            if now - last_sent >= heartbeat:
                yield ": heartbeat\n\n"
                last_sent = now
            subscription.wait(min(subscription.interval, heartbeat - (now - last_sent), limit - (now - started)))
    finally:
        subscription.close()


def response(body: Iterator[str], slot_id: uuid.UUID) -> Response:
    """The streaming response; its slot is freed when the server closes it, however it ended."""
    app = current_app._get_current_object()

    def release() -> None:
        with app.app_context():
            try:
                close_slot(slot_id)
            finally:
                db.session.remove()

    def framed() -> Iterator[str]:
        yield f"retry: {RECONNECT_MS}\n\n"
        yield from body

    result = Response(stream_with_context(framed()), mimetype="text/event-stream")
    result.headers["Cache-Control"] = "no-cache, no-store"
    result.headers["X-Accel-Buffering"] = "no"  # nginx would otherwise hold events back
    result.call_on_close(release)
    return result


# -- what each stream follows -------------------------------------------------------------------


def lookup_snapshot(lookup_id: uuid.UUID, show_raw: bool = False) -> Callable[[], Snapshot]:
    def read() -> Snapshot:
        lookup = db.session.get(Lookup, lookup_id, populate_existing=True)
        finished = lookup.status in ("completed", "failed")
        data = views.lookup_result(lookup, services.raw_report(lookup) if show_raw and finished else None)
        # Not `attempts`: every step a worker takes counts one until it ends well, which a watcher
        # has nothing to see of.
        return (lookup.status, lookup.stage, lookup.provider_status, lookup.polls), data

    return read


def lookup_is_final(data: dict[str, Any]) -> bool:
    return data["status"] in ("completed", "failed")


def scan_snapshot(scan_id: uuid.UUID) -> Callable[[], Snapshot]:
    def read() -> Snapshot:
        scan = db.session.get(Scan, scan_id, populate_existing=True)
        data = {
            "scan_id": scan.id,
            "status": scan.status,
            "stage": scan.stage,
            "detection_ratio": scan.detection_ratio,
            "scan_date": scan.scan_date,
            "verdict": scan_verdict(scan),
            "error": scan.error,
        }
        return (scan.status, scan.stage, scan.detection_ratio, scan.error), data

    return read


def scan_is_final(data: dict[str, Any]) -> bool:
    return data["status"] in FINISHED


def bulk_snapshot(job_id: uuid.UUID) -> Callable[[], Snapshot]:
    def read() -> Snapshot:
        job = db.session.get(BulkJob, job_id, populate_existing=True)
        data = views.job_counts(job, bulk.progress(job.id))
        return tuple(sorted(data.items())), data

    return read


def bulk_is_final(data: dict[str, Any]) -> bool:
    return data["status"] in JOB_FINISHED

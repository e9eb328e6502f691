"""The event loop every stream runs, and its framing.

A stream sends an event whenever what it follows changes and a final event: `complete`,
`timeout` after `STREAM_MAX_SECONDS` (the client reconnects if it still cares), or `unauthorized`
once its token is revoked (logout, password change) or expires. Every `STREAM_HEARTBEAT_SECONDS`
it sends a comment line (so proxies keep the connection and a vanished client is noticed at the
next write), re-checks its token and renews its place in the count of open streams.

It wakes on `scanner.events` and re-reads the database, which is the truth; between reads it
holds no database connection, so a web process's database pool is sized by its requests in
flight, not by its open streams.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from flask import Response, current_app, stream_with_context
from sqlalchemy import exc

from .. import events
from ..auth.revocation import is_revoked
from ..db_reads import autocommit
from ..errors import error_type
from ..extensions import db
from ..jsonable import json_default
from . import slots

# A snapshot: (what decides whether anything changed, the event's data); (None, None) when the
# object is gone (deleted meanwhile).
Snapshot = tuple[Hashable, dict[str, Any] | None]
RECONNECT_MS = 3000
DB_RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)
EVENT_STREAM_DOC = {"200": {"description": "Server-Sent Events", "content": {"text/event-stream": {"schema": {}}}}}


def sse(event: str, data: Any) -> str:
    """One event; `data` as JSON on a single line."""
    return f"event: {event}\ndata: {json.dumps(data, default=json_default, separators=(',', ':'))}\n\n"


def _error_event(event: str, status: int, code: str, message: str) -> str:
    """A last event carrying the error envelope the same request would have been answered with."""
    return sse(event, {"error": {"code": code, "message": message, "type": error_type(status), "details": {}}})


def _unauthorized(code: str, message: str) -> str:
    return _error_event("unauthorized", 401, code, message)


def _gone(kind: str) -> str:
    return _error_event("not_found", 404, "NOT_FOUND", f"{kind.capitalize()} not found: it was deleted")


def follow(
    kind: str,
    ident: uuid.UUID,
    snapshot: Callable[[], Snapshot],
    is_final: Callable[[dict[str, Any]], bool],
    event: str,
    token: dict[str, Any],
    slot: slots.Slot,
) -> Iterator[str]:
    """Events for one object until it is final, the stream's time is up or its token is no good.

    The row is read when an event wakes the stream and every `subscription.interval` (a safety
    net), not at each heartbeat; the first heartbeat comes at a random point of the first period,
    so streams opened together do not beat (and query) together for ever after. A read is one
    autocommit query (no BEGIN and ROLLBACK round trips around it); the token check at a heartbeat
    costs nothing while the auth generation stands (scanner/auth/generation.py), so a logout
    anywhere closes the stream at its next heartbeat, within AUTH_CACHE_SECONDS more."""
    cfg = current_app.config
    heartbeat, limit = cfg["STREAM_HEARTBEAT_SECONDS"], cfg["STREAM_MAX_SECONDS"]
    started = time.monotonic()
    ends = started + limit
    token_ends = started + (token["exp"] - time.time()) if "exp" in token else float("inf")
    subscription = events.subscribe(kind, ident)  # before the first read, so no change slips between
    try:
        last: Hashable = object()
        next_beat = started + heartbeat * random.uniform(0.5, 1.0)  # noqa: S311  spreading, not secrecy
        next_read = started  # read at once
        woken = True
        while True:
            now = time.monotonic()
            read, beat = woken or now >= next_read, now >= next_beat
            looked = _look(snapshot if read else None, token if beat else None)
            if looked is None:  # the database did not answer: try again shortly
                next_read = min(next_read, now + DB_RETRY_SECONDS)
            else:
                (signature, data), revoked = looked
                if read and data is None:
                    yield _gone(kind)
                    return
                if read:
                    next_read = now + subscription.interval
                    if signature != last:
                        yield sse(event, data)
                        last = signature
                    if is_final(data):
                        yield sse("complete", data)
                        return
                if beat:
                    next_beat = now + heartbeat
                    if revoked:
                        yield _unauthorized("TOKEN_REVOKED", "Token has been revoked")
                        return
                    slots.renew(slot)
                    yield ": heartbeat\n\n"
            ending = _ending(now, token_ends, ends, limit)
            if ending:
                yield ending
                return
            woken = subscription.wait(min(next_read, next_beat, ends, token_ends) - time.monotonic())
    finally:
        subscription.close()


def _look(
    snapshot: Callable[[], Snapshot] | None, token: dict[str, Any] | None
) -> tuple[Snapshot | tuple[None, None], bool] | None:
    """The snapshot and whether the token is revoked, each when asked for; None when the database
    could not be reached (a full pool, a restart): the stream waits and tries again rather than
    dropping its client. No connection is held once it returns."""
    if snapshot is None and token is None:
        return (None, None), False
    try:
        if db.session().in_transaction():  # what the view left open: its work is done
            db.session.close()
        taken = (None, None)
        if snapshot is not None:
            with autocommit():
                taken = snapshot()
        # As any request's check: trusted while no token is revoked and no user changes anywhere
        # (the auth generation), else asked of Redis and the database.
        return taken, token is not None and is_revoked(token)
    except (exc.TimeoutError, exc.OperationalError, exc.InterfaceError) as error:
        log.warning("a stream could not read the database, trying again in %gs: %s", DB_RETRY_SECONDS, error)
        db.session.rollback()
        return None
    finally:
        db.session.close()


def _ending(now: float, token_ends: float, ends: float, limit: float) -> str | None:
    """The last event when the token or the stream's time has run out."""
    if now >= token_ends:
        return _unauthorized("TOKEN_EXPIRED", "Token has expired; sign in again and reconnect")
    if now >= ends:
        return sse("timeout", {"message": f"Stream closed after {limit:g} seconds; reconnect to go on"})
    return None


def response(body: Iterator[str], slot: slots.Slot) -> Response:
    """The streaming response; its slot is freed when the server closes it, however it ended."""
    app = current_app._get_current_object()

    def release() -> None:
        with app.app_context():
            try:
                slots.release(slot)
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

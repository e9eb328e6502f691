"""Live events from workers to web processes: "scan X (lookup Y, bulk job Z) changed".

An event is a wake-up call, not the news itself: a stream that wakes re-reads the row, which is
the truth. So an event that is lost, late or duplicated costs at most a delay, never a wrong or
missing state, and a stream subscribes before its first read so no change can slip between.

- With `REDIS_URL`: Redis pub/sub, one channel per object; streams wake as soon as a worker
  commits, and re-read the database every `STREAM_RECHECK_SECONDS` as a safety net.
- Without (embedded mode): there is nothing between processes to carry a message, so `publish`
  does nothing and streams re-read the database every `STREAM_POLL_SECONDS`.

A Redis failure never fails the caller: publishing is skipped for a few seconds, and a waiting
stream falls back to polling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis
from flask import current_app

from .redis_backoff import Backoff, client

log = logging.getLogger(__name__)
T = TypeVar("T")

_shared = Backoff("Redis for events and stream places (streams will poll)")


def channel(kind: str, ident: uuid.UUID | str) -> str:
    return f"{current_app.config['CACHE_KEY_PREFIX']}events:{kind}:{ident}"


def shared_redis(operation: Callable[[redis.Redis], T], what: str) -> T | None:
    """Run `operation` on this process's Redis client. None without Redis, or when Redis failed in
    the last few seconds (the failure is logged once): callers carry on without it."""
    url = current_app.config.get("REDIS_URL")
    return _shared.call(url, operation, what, socket_connect_timeout=1.0, socket_timeout=2.0)


def publish(kind: str, ident: uuid.UUID | str) -> None:
    """Tell every stream watching this object that it changed. Call after the commit; never raises."""
    message = json.dumps({"kind": kind, "id": str(ident), "at": time.time()})
    shared_redis(lambda r: r.publish(channel(kind, ident), message), f"publishing a {kind} event")


class Subscription:
    """What one stream waits on. `interval` is how long a wait may last before the stream should
    re-read the database anyway."""

    def __init__(self, kind: str, ident: uuid.UUID | str) -> None:
        cfg = current_app.config
        self._poll_interval = cfg["STREAM_POLL_SECONDS"]
        self._pubsub: redis.client.PubSub | None = None
        url = cfg.get("REDIS_URL")
        if url:
            try:
                subscriber = client(url, socket_connect_timeout=1.0, health_check_interval=30)
                pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel(kind, ident))
                self._pubsub = pubsub
            except redis.RedisError as error:
                log.warning("could not subscribe to %s events, polling instead: %s", kind, error)
        self.interval = cfg["STREAM_RECHECK_SECONDS"] if self._pubsub is not None else self._poll_interval

    @property
    def live(self) -> bool:
        """True when events arrive as they happen (Redis), False when the stream is polling."""
        return self._pubsub is not None

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when an event arrived (or, polling, when it is time
        to look again)."""
        timeout = max(timeout, 0.0)
        if self._pubsub is None:
            time.sleep(min(timeout, self._poll_interval))
            return True
        try:
            return self._pubsub.get_message(timeout=timeout) is not None
        except (redis.RedisError, OSError, ValueError) as error:
            log.warning("event subscription lost, polling instead: %s", error)
            self.close()
            self.interval = self._poll_interval
            return True

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.close()


def subscribe(kind: str, ident: uuid.UUID | str) -> Subscription:
    return Subscription(kind, ident)

"""Live events from workers to web processes: "scan X (lookup Y, bulk job Z) changed".

An event is a wake-up call, not the news itself: a stream that wakes re-reads the row, which is
the truth. So an event that is lost, late or duplicated costs at most a delay, never a wrong or
missing state, and a stream subscribes before its first read so no change can slip between.

- With `REDIS_URL`: Redis pub/sub, one channel per object; each web process listens to them all on
  one connection and wakes the streams that follow the object, as soon as a worker commits. Streams
  re-read the database every `STREAM_RECHECK_SECONDS` as a safety net.
- Without (embedded mode): there is nothing between processes to carry a message, so `publish`
  does nothing and streams re-read the database every `STREAM_POLL_SECONDS`.

A Redis failure never fails the caller: publishing is skipped for a few seconds, and a waiting
stream falls back to polling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis
from flask import current_app

from .redis_backoff import Backoff

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


class _Listener:
    """This process's one Redis connection for events, shared by every stream it serves.

    It subscribes to the pattern of all event channels once, and wakes the streams that wait on
    the channel a message names: a stream costs no connection, no SUBSCRIBE round trip and no
    socket read of its own (one per stream made opening a stream and each wait dearer than the
    rest of its work). Each web process hears every event, which is a few per scan: cheap beside
    a connection per stream. Under gevent the thread is a greenlet; its events are gevent's.
    """

    RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

    def __init__(self, url: str, pattern: str) -> None:
        self._url, self._pattern = url, pattern
        self._waiters: dict[bytes, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.started = time.monotonic()
        thread = threading.Thread(target=self._run, name="scanner-events", daemon=True)
        thread.start()

    def add(self, name: str) -> threading.Event:
        woken = threading.Event()
        with self._lock:
            self._waiters.setdefault(name.encode(), set()).add(woken)
        return woken

    def remove(self, name: str, woken: threading.Event) -> None:
        key = name.encode()
        with self._lock:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._waiters[key]

    def waiting(self) -> int:
        """Streams waiting on an event in this process."""
        with self._lock:
            return sum(len(each) for each in self._waiters.values())

    def _heard(self, name: bytes | None) -> None:
        """An event on channel `name`; None: anything may have changed (connected or lost)."""
        for observer in _observers:
            try:
                observer(name)
            except Exception:  # an observer's fault must not end the subscription for everyone
                log.exception("an event observer failed")
        self._wake(name)

    def _wake(self, name: bytes | None) -> None:
        with self._lock:
            woken = (
                list(self._waiters.get(name, ()))
                if name is not None
                else [each for waiting in self._waiters.values() for each in waiting]
            )
        for each in woken:
            each.set()

    def _run(self) -> None:
        failures = 0
        while True:
            pubsub = None
            try:
                # Its own connection, not the shared client's pool: it stays subscribed for good.
                pubsub = redis.Redis.from_url(self._url, socket_connect_timeout=1.0).pubsub()
                pubsub.psubscribe(self._pattern)
                while True:
                    message = pubsub.get_message(timeout=30)  # a quiet half minute sends a PING
                    if message is None:
                        pubsub.ping()
                    elif message["type"] == "psubscribe":
                        failures = 0
                        self.connected.set()
                        self._heard(None)  # anything may have changed while it was away
                    elif message["type"] == "pmessage":
                        self._heard(message["channel"])
            except (redis.RedisError, OSError, ValueError) as error:
                if self.connected.is_set() or failures == 0:
                    log.warning("event subscription lost, streams poll until it is back: %s", error)
                if self.connected.is_set():  # what was kept while it was up may now be missed
                    self.connected.clear()
                    self._heard(None)
                time.sleep(self.RETRY_SECONDS[min(failures, len(self.RETRY_SECONDS) - 1)])
                failures += 1
            finally:
                if pubsub is not None:
                    with contextlib.suppress(redis.RedisError, OSError):
                        pubsub.close()


# Called by the listener with the channel of every event this process hears, and with None when
# events may have been missed (the subscription is new, or lost): memories kept up to date by
# events (scanner/event_memory.py) drop what they hold then.
_observers: list[Callable[[bytes | None], None]] = []


def observe(observer: Callable[[bytes | None], None]) -> None:
    _observers.append(observer)


_listeners: dict[tuple[int, str], _Listener] = {}
_listeners_lock = threading.Lock()
CONNECT_WAIT_SECONDS = 1.0


def _listener(url: str) -> _Listener:
    """The process's listener (threads do not survive a fork: a forked child starts its own)."""
    key = (os.getpid(), url)
    with _listeners_lock:
        found = _listeners.get(key)
        if found is None:
            found = _listeners[key] = _Listener(url, channel("*", "*"))
    return found


def hearing() -> bool:
    """True while this process hears events as they happen (it subscribes on the first ask, and
    never without Redis)."""
    url = current_app.config.get("REDIS_URL")
    return bool(url) and _listener(url).connected.is_set()


def waiting_streams() -> int:
    """Streams of this process waiting on an event (0 without Redis)."""
    return sum(each.waiting() for (pid, _), each in list(_listeners.items()) if pid == os.getpid())


class Subscription:
    """What one stream waits on. `interval` is how long a wait may last before the stream should
    re-read the database anyway: STREAM_RECHECK_SECONDS while events arrive, STREAM_POLL_SECONDS
    while they cannot (no Redis, or the process's subscription is down)."""

    def __init__(self, kind: str, ident: uuid.UUID | str) -> None:
        cfg = current_app.config
        self._poll_interval = cfg["STREAM_POLL_SECONDS"]
        self._recheck_interval = cfg["STREAM_RECHECK_SECONDS"]
        self._name = channel(kind, ident)
        self._listener: _Listener | None = None
        self._woken: threading.Event | None = None
        url = cfg.get("REDIS_URL")
        if url:
            self._listener = _listener(url)
            self._woken = self._listener.add(self._name)
            # The first streams of a process wait for the subscription (once, briefly), so that no
            # change slips between their first read and the subscription; later ones find it there
            # or, while Redis is away, poll without waiting.
            self._listener.connected.wait(max(0.0, self._listener.started + CONNECT_WAIT_SECONDS - time.monotonic()))

    @property
    def live(self) -> bool:
        """True when events arrive as they happen (Redis), False when the stream is polling."""
        return self._listener is not None and self._listener.connected.is_set()

    @property
    def interval(self) -> float:
        return self._recheck_interval if self.live else self._poll_interval

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when an event arrived (or, polling, when it is time
        to look again)."""
        timeout = max(timeout, 0.0)
        if not self.live:
            time.sleep(min(timeout, self._poll_interval))
            return True
        woke = self._woken.wait(timeout)
        self._woken.clear()
        return woke

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.remove(self._name, self._woken)


def subscribe(kind: str, ident: uuid.UUID | str) -> Subscription:
    return Subscription(kind, ident)

"""Redis as a fast path that never fails a request, and the process's one registry of clients.

Whatever lives in Redis here (the token blocklist's fast path, the caches, the stream events) has
a slower truth elsewhere. So when Redis fails, its user leaves it alone for `BACKOFF_SECONDS` and
carries on without it: an outage costs one failed round trip (or one timeout), not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import redis

log = logging.getLogger(__name__)

BACKOFF_SECONDS = 5.0
T = TypeVar("T")

_clients: dict[tuple[str, tuple[tuple[str, Any], ...]], redis.Redis] = {}
_lock = threading.Lock()


def client(url: str, **options: Any) -> redis.Redis:
    """The process's client for `url` with these connection options, shared by its threads."""
    key = (url, tuple(sorted(options.items())))
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = redis.Redis.from_url(url, **options)
        return found


class Backoff:
    """When one user of Redis may try it again. `target` tells apart the Redis servers (a URL) or
    cache backends (the object, held weakly) that one user may meet; None when there is one."""

    def __init__(self, name: str, seconds: float = BACKOFF_SECONDS) -> None:
        self.name, self.seconds = name, seconds
        self._by_url: dict[str | None, float] = {}
        self._by_object: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def _table(self, target: Any) -> Any:
        return self._by_url if target is None or isinstance(target, str) else self._by_object

    def available(self, target: Any = None) -> bool:
        return time.monotonic() >= self._table(target).get(target, 0.0)

    def failed(self, operation: str, error: Exception, target: Any = None) -> None:
        self._table(target)[target] = time.monotonic() + self.seconds
        log.warning("%s %s failed, going without it for %.0fs: %s", self.name, operation, self.seconds, error)

    def call(self, url: str | None, operation: Callable[[redis.Redis], T], what: str, **options: Any) -> T | None:
        """Run `operation` on this process's client for `url`. None without Redis, or when it failed
        in the last few seconds (the failure is logged once): the caller carries on without it."""
        if not url or not self.available(url):
            return None
        try:
            return operation(client(url, **options))
        except redis.RedisError as error:
            self.failed(what, error, url)
            return None

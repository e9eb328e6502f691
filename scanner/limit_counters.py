"""Where the rate limiter's counts live: one call counts every window of a request and returns, for
each, the count so far and the seconds until the window starts again.

- `RedisCounters`: fixed windows aligned to the clock (a minute window is the minute), each an
  INCR with its EXPIREAT, all of a request's windows in one script: one round trip and one
  command to encode and parse, where a pipeline of INCR and EXPIREAT pairs cost several.
- While Redis fails, the same counts go to the database (scanner/db_counters.py, one transaction
  per request) for `BACKOFF_SECONDS` at a time: every web process keeps sharing one count, so
  an outage neither lifts the limits nor multiplies them by the number of processes. A window
  begun in Redis starts again there.
- `MemoryCounters`: embedded mode (no Redis configured), each process counting on its own.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import timedelta

import redis
from flask import current_app

from .redis_backoff import Backoff, client

log = logging.getLogger(__name__)

Window = tuple[str, int]  # (counter key, seconds)
MEMORY_MAX_COUNTERS = 100_000
# KEYS: the windows' counters; ARGV: when each window ends (Unix seconds). A counter gets its expiry
# as it is created, in the same atomic step, so none outlives its window.
_COUNT_WINDOWS = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if counts[i] == 1 then redis.call('EXPIREAT', key, ARGV[i]) end
end
return counts
"""


def _aligned(key: str, seconds: int, now: float) -> tuple[str, float]:
    """The counter of the window `now` falls in, and when that window ends."""
    index = int(now // seconds)
    return f"{key}:{seconds}:{index}", (index + 1) * seconds


class MemoryCounters:
    def __init__(self) -> None:
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, windows: list[Window], now: float) -> list[tuple[int, float]]:
        found = []
        with self._lock:
            for key, seconds in windows:
                name, ends = _aligned(key, seconds, now)
                count = self._counts.pop(name, (0, ends))[0] + 1
                self._counts[name] = (count, ends)
                found.append((count, ends - now))
            while len(self._counts) > MEMORY_MAX_COUNTERS:  # the oldest first: windows long over
                self._counts.popitem(last=False)
        return found

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class DatabaseCounters:
    def hit(self, windows: list[Window], now: float) -> list[tuple[int, float]]:
        from . import db_counters
        from .extensions import db

        with db.engine.begin() as conn:
            return [
                db_counters.hit(conn, f"limit:{key}:{seconds}", timedelta(seconds=seconds)) for key, seconds in windows
            ]

    def reset(self) -> None:
        pass


class RedisCounters:
    def __init__(self, url: str) -> None:
        self.url = url
        self.count_windows = client(url, socket_connect_timeout=0.5, socket_timeout=0.5).register_script(_COUNT_WINDOWS)
        self.fallback = DatabaseCounters()
        self.backoff = Backoff("rate-limit Redis (counting in the database)")

    def hit(self, windows: list[Window], now: float) -> list[tuple[int, float]]:
        if self.backoff.available(self.url):
            try:
                return self._hit(windows, now)
            except redis.RedisError as exc:
                self.backoff.failed("count", exc, self.url)
        return self.fallback.hit(windows, now)

    def _hit(self, windows: list[Window], now: float) -> list[tuple[int, float]]:
        prefix = current_app.config["CACHE_KEY_PREFIX"] + "limits:"
        names, ends = zip(*(_aligned(prefix + key, seconds, now) for key, seconds in windows), strict=True)
        counts = self.count_windows(keys=names, args=[int(end) + 1 for end in ends])
        return [(int(count), end - now) for count, end in zip(counts, ends, strict=True)]

    def reset(self) -> None:
        pass


def counters_for(uri: str) -> MemoryCounters | RedisCounters:
    if uri.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounters(uri)
    if uri != "memory://":
        raise ValueError(f"RATELIMIT_STORAGE_URI must be a redis:// URL or memory://, not {uri.split(':', 1)[0]}")
    return MemoryCounters()

"""Where the rate limiter's counts live: one call counts every window of a request and returns, for
each, the count so far and the seconds until the window starts again.

- `RedisCounters`: fixed windows aligned to the clock (a minute window is the minute), each an
  INCRBY with its EXPIREAT, all of a request's windows in one script: one round trip and one
  command to encode and parse, where a pipeline of INCR and EXPIREAT pairs cost several. A
  process counts a few of a window's requests at a time (a lease) and hands those numbers out to
  its next requests without asking Redis again: an eighth of what is left of the limit, at most
  `LEASE_MAX`, so a small limit or one nearly spent is counted a request at a time. The count in
  Redis never passes a request over its limit; the numbers a process holds unused when the
  window ends are lost, so a client served by several processes may be refused a few requests
  early, never late.
- While Redis fails, the same counts go to the database (scanner/db_counters.py, one transaction
  per request) for `BACKOFF_SECONDS` at a time: every web process keeps sharing one count, so
  an outage neither lifts the limits nor multiplies them by the number of processes. A window
  begun in Redis starts again there.
- `MemoryCounters`: embedded mode (no Redis configured), each process counting on its own.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from flask import current_app

from .redis_backoff import Backoff, client

log = logging.getLogger(__name__)

Window = tuple[str, int, int]  # (counter key, seconds, the limit's amount)
MEMORY_MAX_COUNTERS = 100_000
LEASE_MAX = 100
LEASE_SHARE = 8  # a lease is this fraction of what is left of the limit
# KEYS: the windows' counters; ARGV: for each, how much to count, then when its window ends (Unix
# seconds). A counter gets its expiry as it is created, in the same atomic step, so none outlives
# its window.
_COUNT_WINDOWS = """
local counts = {}
for i, key in ipairs(KEYS) do
  local by = tonumber(ARGV[2 * i - 1])
  counts[i] = redis.call('INCRBY', key, by)
  if counts[i] == by then redis.call('EXPIREAT', key, ARGV[2 * i]) end
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
            for key, seconds, _ in windows:
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
                db_counters.hit(conn, f"limit:{key}:{seconds}", timedelta(seconds=seconds))
                for key, seconds, _ in windows
            ]

    def reset(self) -> None:
        pass


@dataclass(slots=True)
class _Held:
    """One window's numbers this process counted in Redis and has not handed out yet."""

    ends: float
    ranges: list[list[int]] = field(default_factory=list)  # [next, last], in the order taken
    highest: int = 0  # the highest count Redis has told this process


class Leases:
    """The numbers of each window this process counted in Redis and has not handed out yet."""

    def __init__(self) -> None:
        self._windows: OrderedDict[str, _Held] = OrderedDict()

    def take(self, name: str) -> int | None:
        """The next number held for this window; None when none is left. No await point inside, so
        greenlets and threads of this process never take one number twice."""
        held = self._windows.get(name)
        ranges = held.ranges if held is not None else ()
        while ranges:
            span = ranges[0]
            if span[0] <= span[1]:
                span[0] += 1
                return span[0] - 1
            ranges.pop(0)
        return None

    def size(self, name: str, amount: int) -> int:
        held = self._windows.get(name)
        left = amount - (held.highest if held is not None else 0)
        return max(1, min(LEASE_MAX, left // LEASE_SHARE))

    def add(self, name: str, first: int, last: int, ends: float, now: float) -> int:
        """Hold the numbers first..last (another request may have added some meanwhile: both are
        kept) and take the first."""
        held = self._windows.get(name)
        if held is None:
            self._forget_ended(now)
            held = self._windows[name] = _Held(ends)
        held.ranges.append([first + 1, last])
        held.highest = max(held.highest, last)
        return first

    def _forget_ended(self, now: float) -> None:
        while len(self._windows) >= MEMORY_MAX_COUNTERS:
            self._windows.popitem(last=False)
        oldest = itertools.islice(self._windows.items(), 8)  # the first made: the most often over
        for name in [name for name, held in oldest if held.ends <= now]:
            del self._windows[name]

    def clear(self) -> None:
        self._windows.clear()


class RedisCounters:
    def __init__(self, url: str) -> None:
        self.url = url
        self.count_windows = client(url, socket_connect_timeout=0.5, socket_timeout=0.5).register_script(_COUNT_WINDOWS)
        self.fallback = DatabaseCounters()
        self.backoff = Backoff("rate-limit Redis (counting in the database)")
        self.leases = Leases()

    def hit(self, windows: list[Window], now: float) -> list[tuple[int, float]]:
        if self.backoff.available(self.url):
            try:
                return self._hit(windows, now)
            except redis.RedisError as exc:
                self.backoff.failed("count", exc, self.url)
        return self.fallback.hit(windows, now)

    def _hit(self, windows: list[Window], now: float) -> list[tuple[int, float]]:
        prefix = current_app.config["CACHE_KEY_PREFIX"] + "limits:"
        names, ends = zip(*(_aligned(prefix + key, seconds, now) for key, seconds, _ in windows), strict=True)
        counts = [self.leases.take(name) for name in names]
        short = [i for i, count in enumerate(counts) if count is None]
        if short:
            sizes = [self.leases.size(names[i], windows[i][2]) for i in short]
            args = [arg for i, size in zip(short, sizes, strict=True) for arg in (size, int(ends[i]) + 1)]
            totals = self.count_windows(keys=[names[i] for i in short], args=args)
            for i, size, total in zip(short, sizes, totals, strict=True):
                counts[i] = self.leases.add(names[i], int(total) - size + 1, int(total), ends[i], now)
        return [(count, end - now) for count, end in zip(counts, ends, strict=True)]

    def reset(self) -> None:
        self.leases.clear()


def counters_for(uri: str) -> MemoryCounters | RedisCounters:
    if uri.startswith(("redis://", "rediss://", "unix://")):
        return RedisCounters(uri)
    if uri != "memory://":
        raise ValueError(f"RATELIMIT_STORAGE_URI must be a redis:// URL or memory://, not {uri.split(':', 1)[0]}")
    return MemoryCounters()

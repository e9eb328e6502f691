"""Counters of what every process does (web and Celery workers alike), exported by the web's
`GET /metrics` (scanner/system/prometheus.py).

A worker may run on another machine than the web (the Procfile allows it), where
prometheus-client's multiprocess files, which only add up the processes of one machine, would never
reach a scrape. So these counters live in the store every process already shares: an increment is
added up in the process's memory and, when its app context ends (a request or a task), the whole
batch goes to the store in one round trip (`store.flush`): a Redis transaction of HINCRBYs, or,
without Redis (embedded mode) or while it is down, one upsert in the database. A scrape reads the
totals from both, so an outage loses no count.

They live here, below every feature, so that counting never makes a feature import the web side.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

Labels = tuple[str, ...]

_counters: dict[str, SharedCounter] = {}
_pending: Counter[tuple[str, Labels]] = Counter()
_lock = threading.Lock()


class SharedCounter:
    """A Prometheus counter summed over every process of the deployment."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        _counters[name] = self

    def inc(self, *labels: object, amount: int = 1) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {self.labelnames}, not {labels}")
        if amount:
            with _lock:
                _pending[(self.name, tuple(str(label) for label in labels))] += amount


def counters() -> list[SharedCounter]:
    return list(_counters.values())


def take_pending() -> dict[tuple[str, Labels], int]:
    """This process's increments since the last flush; they are the caller's to store now."""
    global _pending
    with _lock:
        taken, _pending = _pending, Counter()
    return dict(taken)


def put_back(counts: dict[tuple[str, Labels], int]) -> None:
    """Increments the store would not take: they go with the next flush."""
    with _lock:
        _pending.update(counts)


def _forget_parents_counts() -> None:
    # A forked child (a Celery pool process) starts from nothing: its parent stores its own counts.
    global _pending, _lock
    _pending, _lock = Counter(), threading.Lock()


os.register_at_fork(after_in_child=_forget_parents_counts)

CACHE_REQUESTS = SharedCounter(
    "scanner_cache_requests_total", "Reads of the lookup and results caches", ("cache", "outcome")
)


def count_cache(cache: str, hits: int, misses: int) -> None:
    CACHE_REQUESTS.inc(cache, "hit", amount=hits)
    CACHE_REQUESTS.inc(cache, "miss", amount=misses)

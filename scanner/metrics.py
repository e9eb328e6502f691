"""Counters the features increment for Prometheus (`GET /metrics`, scanner/system/prometheus.py).

They live here, below every feature, so that counting never makes a feature import the web side.
Under gunicorn and Celery, prometheus-client's multiprocess mode adds up every process's counts.
"""

from __future__ import annotations

from prometheus_client import Counter

CACHE_REQUESTS = Counter("scanner_cache_requests_total", "Reads of the lookup and results caches", ["cache", "outcome"])


def count_cache(cache: str, hits: int, misses: int) -> None:
    if hits:
        CACHE_REQUESTS.labels(cache, "hit").inc(hits)
    if misses:
        CACHE_REQUESTS.labels(cache, "miss").inc(misses)

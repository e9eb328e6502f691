"""GET /metrics in Prometheus' text format, for a scraper (not for people: that is /api/providers).

The web's own request counts and latencies live in its processes; under gunicorn,
prometheus-client's multiprocess mode adds up the workers' files at scrape time. What any process
counts, the Celery workers on other machines included (VirusTotal requests, retries, quota waits,
cache reads), is in the shared store (scanner/metrics/) and read from there. What the database or
Redis already knows (scans, lookups and bulk jobs by state, open streams, queue depth, quota left)
is read at scrape time too. So those series are the deployment's totals, the same on every web
process: aggregate them across instances with max(), not sum().

Only a scraper may read it: a bearer token equal to METRICS_TOKEN, or a client address in
METRICS_ALLOWED_ADDRESSES (loopback by default).
"""

from __future__ import annotations

import bisect
import collections
import hmac
import logging
import os
import threading
from collections.abc import Iterator

import redis
from flask import Flask, Response, current_app, request
from flask_limiter.util import get_remote_address
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..db_types import utcnow
from ..errors import Forbidden
from ..extensions import db
from ..metrics import counters
from ..metrics.store import flush_along, totals
from ..rate_limits import limiter
from ..redis_backoff import client as redis_client

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("scanner_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "scanner_http_request_duration_seconds",
    "Time to answer an HTTP request (up to the first byte of a streamed body)",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    return registry


class StateCollector:
    """Rows by state, read when scraped; a failure leaves these metrics out, not the scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ..lookups.models import BulkJob, Lookup
        from ..scans.models import Scan
        from ..streams.models import StreamSlot

        try:
            for name, model in (("scans", Scan), ("lookups", Lookup), ("bulk_jobs", BulkJob)):
                family = GaugeMetricFamily(f"scanner_{name}", f"{name} by status", labels=["status"])
                counts = db.session.execute(select(model.status, func.count()).group_by(model.status))
                for status, count in counts:
                    family.add_metric([status], count)
                yield family
            streams = db.session.scalar(select(func.count()).where(StreamSlot.expires_at > utcnow()))
            yield GaugeMetricFamily("scanner_open_streams", "Event streams open now", value=streams)
        except Exception:  # the database is away: the scrape still answers with the rest
            log.warning("metrics: could not read row states", exc_info=True)
            db.session.rollback()
        quota_left = _quota_remaining()
        if quota_left is not None:
            yield quota_left
        depth = _queue_depth()
        if depth is not None:
            yield GaugeMetricFamily("scanner_queue_depth", "Tasks waiting in the Celery queue", value=depth)


class SharedCountersCollector:
    """The counters every process adds to the shared store, web and workers alike."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        try:
            found = totals()
        except Exception:  # the database is away: the scrape still answers with the rest
            log.warning("metrics: could not read the shared counters", exc_info=True)
            db.session.rollback()
            return
        for counter in counters():
            family = CounterMetricFamily(counter.name, counter.documentation, labels=counter.labelnames)
            for (name, labels), value in sorted(found.items()):
                if name == counter.name and len(labels) == len(counter.labelnames):
                    family.add_metric(labels, value)
            yield family


def _quota_remaining() -> GaugeMetricFamily | None:
    """What each active key may still ask VirusTotal this minute and today, by key id (never its value)."""
    from ..api_keys.models import ApiKey
    from ..virustotal import quota

    family = GaugeMetricFamily(
        "scanner_vt_quota_remaining", "VirusTotal requests an active key may still make", labels=["key_id", "window"]
    )
    try:
        for key in db.session.scalars(select(ApiKey).where(ApiKey.is_active.is_(True))):
            usage = quota.usage(key)
            family.add_metric([str(key.id), "minute"], usage["minute_remaining"])
            family.add_metric([str(key.id), "day"], usage["day_remaining"])
    except Exception:  # the database or the quota store is away: the scrape answers without it
        log.warning("metrics: could not read the keys' quota", exc_info=True)
        db.session.rollback()
        return None
    return family


def _queue_depth() -> int | None:
    """Tasks waiting in the default queue: a Redis list, or the SQL broker's visible rows (embedded mode)."""
    conf = current_app.extensions["celery"].conf
    broker, queue = str(conf.broker_url), conf.task_default_queue
    try:
        if broker.startswith(("redis://", "rediss://")):
            return int(redis_client(broker, socket_timeout=1, socket_connect_timeout=1).llen(queue))
        if broker.startswith("sqla+"):
            with _broker_engine(broker.removeprefix("sqla+")).connect() as conn:
                return int(conn.execute(_SQL_QUEUE_DEPTH, {"queue": queue}).scalar_one())
    except (redis.RedisError, SQLAlchemyError):  # no broker, or no queue yet: the rest still answers
        log.warning("metrics: could not read the queue depth", exc_info=True)
    return None


# kombu's SQL transport hides a message it delivers (visible = false) until it is acknowledged.
_SQL_QUEUE_DEPTH = text(
    "SELECT count(*) FROM kombu_message m JOIN kombu_queue q ON q.id = m.queue_id WHERE q.name = :queue AND m.visible"
)
_broker_engines: dict[str, Engine] = {}


def _broker_engine(url: str) -> Engine:
    if url not in _broker_engines:
        _broker_engines[url] = create_engine(url)
    return _broker_engines[url]


def _allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer ") :], token):
        return True
    return get_remote_address() in current_app.config["METRICS_ALLOWED_ADDRESSES"]


LATENCY_BOUNDS = (*HTTP_LATENCY._upper_bounds,)  # the buckets' upper bounds, +Inf last


class _Answered:
    """This process's answered requests not yet in prometheus-client's files: a write there takes
    a lock and an mmap store per value, three a request, where adding up in memory costs a
    dictionary update. The shared counters' flusher writes them (scanner/metrics/store.py): every
    METRICS_FLUSH_SECONDS, as the process exits, and before this process answers a scrape."""

    def __init__(self) -> None:
        self._restart()
        os.register_at_fork(after_in_child=self._restart)  # a forked child's parent writes its own

    def _restart(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[tuple[str, str, int]] = collections.Counter()
        # (route, method) -> [observations in each bucket..., sum of the seconds]
        self.latencies: dict[tuple[str, str], list[float]] = {}

    def add(self, route: str, method: str, status: int, seconds: float) -> None:
        bucket = bisect.bisect_left(LATENCY_BOUNDS, seconds)  # the first bound >= seconds, as observe()
        with self.lock:
            self.counts[(route, method, status)] += 1
            latency = self.latencies.get((route, method))
            if latency is None:
                latency = self.latencies[(route, method)] = [0.0] * (len(LATENCY_BOUNDS) + 1)
            latency[bucket] += 1
            latency[-1] += seconds

    def has_pending(self) -> bool:
        return bool(self.counts)

    def flush(self) -> None:
        with self.lock:
            counts, latencies = self.counts, self.latencies
            self.counts, self.latencies = collections.Counter(), {}
        for (route, method, status), n in counts.items():
            HTTP_REQUESTS.labels(route, method, str(status)).inc(n)
        for (route, method), latency in latencies.items():
            # Histogram.observe() one request at a time, for many: the same buckets and sum.
            child = HTTP_LATENCY.labels(route, method)
            for bucket, n in zip(child._buckets, latency[:-1], strict=True):
                if n:
                    bucket.inc(n)
            child._sum.inc(latency[-1])


_answered = _Answered()


def observe(route: str, method: str, status: int, seconds: float) -> None:
    """An answered request (system/middleware.py records each)."""
    _answered.add(route, method, status, seconds)


def init_prometheus(app: Flask) -> None:
    flush_along(_answered)

    @limiter.exempt
    def metrics() -> Response:
        if not _allowed():
            raise Forbidden("Metrics are for the scraper: send METRICS_TOKEN or call from an allowed address")
        _answered.flush()  # this process's own requests at once
        registry = _registry()
        body = generate_latest(registry)
        state = CollectorRegistry()
        state.register(StateCollector())
        state.register(SharedCountersCollector())
        return Response(body + generate_latest(state), content_type=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "prometheus_metrics", metrics, methods=["GET"])

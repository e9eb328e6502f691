"""Request counts per hour, by route template and status, shared by every web process.

Each web process adds its counts up in memory and writes them every `METRICS_FLUSH_SECONDS`
(1 s by default), with the shared counters and by the same flusher (scanner/metrics/store.py: a
timer writes what an idle process holds, and a process writes what it holds as it exits): a count
reaches /api/providers/metrics within that delay, the answering process's own at once. 0 writes
each request as it ends.

With Redis: one hash per hour (`HINCRBY` on "<status> <route>", expiring after the retention),
one pipelined round trip per write. Without Redis, or while it is down: the `request_counts`
table, one transaction per write. The summary adds both, so an outage loses no count.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..auth import redis_store
from ..db_types import utcnow
from ..extensions import db
from ..metrics.store import flush_along
from .models import RequestCount

log = logging.getLogger(__name__)


def _hour(now: float | None = None) -> int:
    return int((now if now is not None else time.time()) // 3600)


def _redis_key(hour: int) -> str:
    return f"{current_app.config['CACHE_KEY_PREFIX']}metrics:requests:{hour}"


def _upsert(counts: Counter[tuple[int, str, int]]) -> None:
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    with db.engine.begin() as conn:
        for (hour, route, status), n in counts.items():
            statement = insert(RequestCount).values(hour=hour, route=route[:255], status=status, count=n)
            statement = statement.on_conflict_do_update(
                index_elements=["hour", "route", "status"], set_={"count": RequestCount.count + n}
            )
            conn.execute(statement)


def _write(counts: Counter[tuple[int, str, int]]) -> None:
    try:
        retention = (current_app.config["METRICS_RETENTION_HOURS"] + 1) * 3600

        def hit(client) -> None:
            pipe = client.pipeline(transaction=False)
            for (hour, route, status), n in counts.items():
                pipe.hincrby(_redis_key(hour), f"{status} {route}", n)
            for hour in {hour for hour, _, _ in counts}:
                pipe.expire(_redis_key(hour), retention)
            pipe.execute()

        redis_store.call(hit)
        return
    except redis_store.RedisUnavailable:
        pass
    _upsert(counts)


class _RequestCounts:
    """This process's counts not yet written; the shared counters' flusher writes them
    (scanner/metrics/store.py): every METRICS_FLUSH_SECONDS, as the process exits, and at once
    when that is 0."""

    def __init__(self) -> None:
        self._restart()
        os.register_at_fork(after_in_child=self._restart)  # a forked child's parent writes its own

    def _restart(self) -> None:
        self.counts: Counter[tuple[int, str, int]] = Counter()
        self.lock = threading.Lock()

    def add(self, route: str, status: int) -> None:
        with self.lock:
            self.counts[(_hour(), route, status)] += 1

    def has_pending(self) -> bool:
        return bool(self.counts)

    def flush(self) -> None:
        with self.lock:
            taken, self.counts = self.counts, Counter()
        if not taken:
            return
        try:
            _write(taken)
        except Exception:  # kept for the next write rather than lost
            log.warning("request counts not written yet", exc_info=True)
            with self.lock:
                self.counts.update(taken)


_pending = _RequestCounts()


def count_request(route: str, status: int) -> None:
    """Count one answered request (system/middleware.py counts each)."""
    _pending.add(route, status)


def init_request_counting(app: Flask) -> None:
    flush_along(_pending)


def _stored_counts(first_hour: int) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    try:
        keys = [_redis_key(h) for h in range(first_hour, _hour() + 1)]

        def read(client) -> list[dict]:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            return pipe.execute()

        for fields in redis_store.call(read):
            for field, value in fields.items():
                status, route = field.decode().split(" ", 1)
                counts[(route, int(status))] += int(value)
    except redis_store.RedisUnavailable:
        pass
    rows = db.session.execute(
        select(RequestCount.route, RequestCount.status, func.sum(RequestCount.count))
        .where(RequestCount.hour >= first_hour)
        .group_by(RequestCount.route, RequestCount.status)
    )
    for route, status, total in rows:
        counts[(route, status)] += int(total)
    return counts


def summary(hours: int) -> dict:
    """Seed 002's metrics body for the last `hours` hours (the current hour included)."""
    _pending.flush()  # this process's own counts at once
    counts = _stored_counts(_hour() - hours + 1)
    by_status: Counter[str] = Counter()
    by_endpoint: Counter[str] = Counter()
    for (route, status), n in counts.items():
        by_status[str(status)] += n
        by_endpoint[route] += n
    total = sum(counts.values())
    errors = sum(n for (_, status), n in counts.items() if status >= 400)
    return {
        "period_hours": hours,
        "timestamp": utcnow().isoformat(),
        "total_requests": total,
        "requests_by_status": dict(sorted(by_status.items())),
        "requests_by_endpoint": dict(by_endpoint.most_common()),
        "error_rate": round(100.0 * errors / total, 2) if total else 0.0,
    }


def prune() -> int:
    """Delete database counts older than the retention (Redis hashes expire by themselves)."""
    first_kept = _hour() - current_app.config["METRICS_RETENTION_HOURS"]
    return db.session.execute(RequestCount.__table__.delete().where(RequestCount.hour < first_kept)).rowcount

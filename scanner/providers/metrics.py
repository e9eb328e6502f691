"""Request counts per hour, by route template and status, shared by every web process.

Each web process adds its counts up in memory and writes them every `METRICS_FLUSH_SECONDS`
(1 s by default; a flusher in the background writes what an idle process holds, and a process
writes what it holds as it exits): a count reaches /api/providers/metrics within that delay,
the answering process's own at once. 0 writes each request as it ends.

With Redis: one hash per hour (`HINCRBY` on "<status> <route>", expiring after the retention),
one pipelined round trip per write. Without Redis, or while it is down: the `request_counts`
table, one transaction per write. The summary adds both, so an outage loses no count.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter

from flask import Flask, Response, current_app, request
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..auth import redis_store
from ..db_types import utcnow
from ..extensions import db
from ..request_args.ids import route_template
from .models import RequestCount

log = logging.getLogger(__name__)

UNMATCHED = "(no route)"
_COUNTED = "scanner.metrics.counted"


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


class _Pending:
    """This process's counts not yet written, and the flusher that writes them."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[int, str, int]] = Counter()
        self.lock = threading.Lock()
        self.pid = 0  # the process the flusher runs in: a forked child starts its own

    def add(self, app: Flask, route: str, status: int) -> None:
        with self.lock:
            if self.pid != os.getpid():  # the first count of this process: its flusher starts
                self.pid = os.getpid()
                self.counts = Counter()  # a forked child's parent had its own to write
                threading.Thread(target=self._flusher, args=(app,), daemon=True, name="metrics-flush").start()
                atexit.register(self.flush, app)
            self.counts[(_hour(), route, status)] += 1

    def take(self) -> Counter[tuple[int, str, int]]:
        with self.lock:
            taken, self.counts = self.counts, Counter()
        return taken

    def flush(self, app: Flask) -> None:
        taken = self.take()
        if not taken:
            return
        try:
            with app.app_context():
                _write(taken)
        except Exception:  # kept for the next write rather than lost
            log.warning("request counts not written yet", exc_info=True)
            with self.lock:
                self.counts.update(taken)

    def _flusher(self, app: Flask) -> None:
        while True:
            time.sleep(app.config["METRICS_FLUSH_SECONDS"])
            self.flush(app)


_pending = _Pending()


def count_request(route: str, status: int) -> None:
    """Count one request (in a request's or an app's context)."""
    app = current_app._get_current_object()
    if app.config["METRICS_FLUSH_SECONDS"] <= 0:
        _write(Counter({(_hour(), route, status): 1}))
    else:
        _pending.add(app, route, status)


def _remember(response: Response) -> Response:
    request.environ[_COUNTED] = (route_template() or UNMATCHED, response.status_code)
    return response


def init_request_counting(app: Flask) -> None:
    """Count each request once the app is done with it: around the WSGI app, not in a request
    hook, so the request's own transaction is over (on SQLite an open one would block the count)."""
    app.after_request(_remember)
    inner = app.wsgi_app

    def counted(environ: dict, start_response):
        result = inner(environ, start_response)
        if _COUNTED in environ:
            route, status = environ[_COUNTED]
            try:
                with app.app_context():
                    count_request(route, status)
            except Exception:  # a count is not worth a failed request
                log.warning("request not counted", exc_info=True)
        return result

    app.wsgi_app = counted


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
    _pending.flush(current_app._get_current_object())  # this process's own counts at once
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

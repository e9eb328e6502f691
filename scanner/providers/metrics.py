"""Request counts per hour, by route template and status, shared by every web process.

With Redis: one hash per hour (`HINCRBY` on "<status> <route>", expiring after the retention),
one round trip per request. Without Redis, or while it is down: the `request_counts` table, one
upsert in a transaction of its own. The summary adds both, so an outage loses no count.
"""

from __future__ import annotations

import logging
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


def _upsert(hour: int, route: str, status: int) -> None:
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(RequestCount).values(hour=hour, route=route, status=status, count=1)
    statement = statement.on_conflict_do_update(
        index_elements=["hour", "route", "status"], set_={"count": RequestCount.count + 1}
    )
    with db.engine.begin() as conn:
        conn.execute(statement)


def count_request(route: str, status: int) -> None:
    hour = _hour()
    try:
        retention = (current_app.config["METRICS_RETENTION_HOURS"] + 1) * 3600

        def hit(client) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(_redis_key(hour), f"{status} {route}", 1)
            pipe.expire(_redis_key(hour), retention)
            pipe.execute()

        redis_store.call(hit)
        return
    except redis_store.RedisUnavailable:
        pass
    _upsert(hour, route[:255], status)


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

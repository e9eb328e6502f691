"""Readiness checks: each component answers healthy or unhealthy with a reason."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import current_app
from kombu import Connection
from sqlalchemy import text

from ..db_types import utcnow
from ..extensions import cache, db
from ..redis_backoff import client
from .heartbeat import live_workers

log = logging.getLogger(__name__)


class Unhealthy(Exception):
    """A check's own finding, safe to show as it is."""


def _timed(name: str, check: Callable[[], str]) -> dict:
    started = time.perf_counter()
    try:
        message = check()
        status = "healthy"
    except Unhealthy as exc:
        message, status = str(exc), "unhealthy"
    except Exception as exc:  # any failure is the answer to report, not an error of ours
        # The endpoint needs no sign-in: a driver's text can name hosts, ports and database users,
        # so the body says only what kind of failure it was and the log keeps the rest.
        log.warning("readiness: %s is down: %s: %s", name, type(exc).__name__, exc)
        message, status = f"unreachable ({type(exc).__name__})", "unhealthy"
    return {"status": status, "message": message, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def database_reachable() -> str:
    db.session.execute(text("SELECT 1"))
    return f"{db.engine.dialect.name} reachable"


def _cache() -> str:
    probe = f"health:{time.time_ns()}"
    if not cache.set(probe, "1", timeout=10) or cache.get(probe) != "1":
        raise Unhealthy("cache did not keep a value")
    cache.delete(probe)
    return f"{current_app.config['CACHE_TYPE']} reachable"


def redis_reachable() -> str:
    client(current_app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2).ping()
    return "Redis reachable"


def _broker() -> str:
    conf = current_app.extensions["celery"].conf
    # A fresh connection, not one from Celery's pool, so a broker that went away is noticed.
    with Connection(conf.broker_url, transport_options=conf.broker_transport_options, connect_timeout=3) as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        return f"{conn.transport_cls} broker reachable"


def _worker() -> str:
    workers = live_workers(current_app)
    if not workers:
        raise Unhealthy(f"no worker heartbeat in the last {int(current_app.config['WORKER_STALE_SECONDS'])}s")
    return f"{len(workers)} worker(s) alive"


def readiness() -> tuple[dict, int]:
    checks: dict[str, tuple[Callable[[], str], bool]] = {
        "database": (database_reachable, True),
        "cache": (_cache, False),
        "broker": (_broker, True),
        "worker": (_worker, True),
    }
    if current_app.config.get("REDIS_URL"):
        checks["redis"] = (redis_reachable, False)
    components = {name: _timed(name, check) | {"required": required} for name, (check, required) in checks.items()}
    down_required = [n for n, c in components.items() if c["required"] and c["status"] != "healthy"]
    down_optional = [n for n, c in components.items() if not c["required"] and c["status"] != "healthy"]
    status = "unavailable" if down_required else "degraded" if down_optional else "ok"
    body = {"status": status, "timestamp": utcnow().isoformat(), "components": components}
    return body, 503 if down_required else 200

"""Where the shared counters' totals are kept: a Redis hash, and a table for when Redis is not there."""

from __future__ import annotations

import json
import logging
from collections import Counter

from flask import Flask, appcontext_tearing_down, current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..redis_backoff import Backoff
from . import Labels, put_back, take_pending
from .models import CounterTotal

log = logging.getLogger(__name__)

_backoff = Backoff("metrics Redis (counting in the database)")
# A frozen Redis delays the end of a request or task by this much once, then is left alone.
_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


def _hash() -> str:
    return f"{current_app.config['CACHE_KEY_PREFIX']}metrics:counters"


def _field(name: str, labels: Labels) -> str:
    return json.dumps([name, *labels])


def _to_redis(counts: dict[tuple[str, Labels], int]) -> bool:
    def add(client) -> bool:
        # MULTI/EXEC: all of the batch or none of it, so a failure never counts a part twice.
        pipe = client.pipeline(transaction=True)
        for (name, labels), amount in counts.items():
            pipe.hincrby(_hash(), _field(name, labels), amount)
        pipe.execute()
        return True

    return bool(_backoff.call(current_app.config.get("REDIS_URL"), add, "adding counters", **_TIMEOUTS))


def _to_database(counts: dict[tuple[str, Labels], int]) -> None:
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    rows = [{"name": name, "labels": json.dumps(labels), "value": n} for (name, labels), n in sorted(counts.items())]
    statement = insert(CounterTotal).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["name", "labels"], set_={"value": CounterTotal.value + statement.excluded.value}
    )
    # A connection of its own: the caller's session (committed or not) is none of this.
    with db.engine.begin() as conn:
        conn.execute(statement)


def flush() -> None:
    """Store this process's increments since the last flush; kept for the next one if no store
    takes them now."""
    counts = take_pending()
    if not counts:
        return
    try:
        if not _to_redis(counts):
            _to_database(counts)
    except Exception:  # a count is not worth a failed request or task
        put_back(counts)
        log.warning("counters not stored, kept for the next flush", exc_info=True)


def totals() -> Counter[tuple[str, Labels]]:
    """Every counter's totals by label values, Redis's and the database's added up."""
    found: Counter[tuple[str, Labels]] = Counter()
    stored = _backoff.call(
        current_app.config.get("REDIS_URL"), lambda client: client.hgetall(_hash()), "reading counters", **_TIMEOUTS
    )
    for field, value in (stored or {}).items():
        name, *labels = json.loads(field)
        found[(name, tuple(labels))] += int(value)
    for name, labels, value in db.session.execute(select(CounterTotal.name, CounterTotal.labels, CounterTotal.value)):
        found[(name, tuple(json.loads(labels)))] += int(value)
    return found


def init_shared_counters(app: Flask) -> None:
    """Flush when an app context ends: after each request and each Celery task (a task runs in one).
    On the signal, not a teardown function: it comes after Flask-SQLAlchemy has closed the session,
    so on SQLite no write lock of the request's is held while the counts are written."""

    def flush_at_teardown(sender: Flask, **kwargs: object) -> None:
        flush()

    appcontext_tearing_down.connect(flush_at_teardown, app, weak=False)

"""Where the shared counters' totals are kept: a Redis hash, and a table for when Redis is not there."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import Counter
from typing import Protocol

from celery import signals
from flask import Flask, appcontext_tearing_down, current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..redis_backoff import Backoff
from . import Labels, has_pending, put_back, take_pending
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
        # MULTI/EXEC: all of the batch or none of it, so a batch Redis refused goes whole to the database.
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


class Batch(Protocol):
    """Counts a process adds up in memory and stores now and then."""

    def has_pending(self) -> bool: ...

    def flush(self) -> None:
        """Store what is pending (in an app context); keep it for the next flush if no store takes it."""


class _SharedCounters:
    has_pending = staticmethod(has_pending)
    flush = staticmethod(flush)


# Every batch this process flushes: the shared counters, and what a feature adds (flush_along).
_batches: list[Batch] = [_SharedCounters()]


def flush_along(batch: Batch) -> None:
    """Store `batch` with the shared counters, by the same flusher: one per process, whatever it counts."""
    if batch not in _batches:
        _batches.append(batch)


def _pending() -> bool:
    return any(batch.has_pending() for batch in _batches)


def _flush_all() -> None:
    for batch in _batches:
        batch.flush()


class _Batches:
    """When this process stores its counts: when an app context ends (a request, a task) and
    METRICS_FLUSH_SECONDS have passed since the last flush; otherwise a timer does it once they
    have, so an idle process leaves nothing behind for long. And once more as the process ends."""

    def __init__(self, app: Flask) -> None:
        self.app, self.interval = app, app.config["METRICS_FLUSH_SECONDS"]
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a timer does not survive a fork

    def _reset(self) -> None:
        self.last, self.timer, self.lock = 0.0, None, threading.Lock()

    def at_teardown(self, sender: Flask, **kwargs: object) -> None:
        if self.timer is not None or not _pending():
            return  # the timer set will store it
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            _flush_all()
            return
        with self.lock:
            if self.timer is None:
                self.timer = threading.Timer(self.interval - (now - self.last), self._due)
                self.timer.daemon = True
                self.timer.start()

    def _due(self) -> None:
        with self.lock:
            self.timer = None
        with self.app.app_context():
            pass  # its end flushes

    def final(self, **kwargs: object) -> None:
        if _pending():
            with self.app.app_context():
                _flush_all()


def init_shared_counters(app: Flask) -> None:
    """On the signal, not a teardown function: it comes after Flask-SQLAlchemy has closed the
    session, so on SQLite no write lock of the request's is held while the counts are written."""
    batches = _Batches(app)
    appcontext_tearing_down.connect(batches.at_teardown, app, weak=False)
    atexit.register(batches.final)
    # A Celery pool process ends with os._exit, past atexit.
    signals.worker_process_shutdown.connect(batches.final, weak=False)

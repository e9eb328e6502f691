"""Worker liveness, written to the database so readiness works with any broker."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import timedelta

from celery import signals
from flask import Flask
from sqlalchemy import delete, select

from ..db_types import utcnow
from ..extensions import db
from .models import WorkerHeartbeat

log = logging.getLogger(__name__)
_stop = threading.Event()


def beat(hostname: str) -> None:
    row = db.session.get(WorkerHeartbeat, hostname)
    if row is None:
        db.session.add(WorkerHeartbeat(hostname=hostname, seen_at=utcnow()))
    else:
        row.seen_at = utcnow()
    db.session.commit()


def live_workers(app: Flask) -> list[str]:
    since = utcnow() - timedelta(seconds=app.config["WORKER_STALE_SECONDS"])
    return list(db.session.scalars(select(WorkerHeartbeat.hostname).where(WorkerHeartbeat.seen_at >= since)))


def connect_worker_signals(app: Flask) -> None:
    def heartbeat_loop(hostname: str) -> None:
        interval = app.config["WORKER_HEARTBEAT_SECONDS"]
        while not _stop.is_set():
            try:
                with app.app_context():
                    beat(hostname)
            except Exception:  # the database may be briefly away; the next beat will tell
                log.warning("worker heartbeat failed", exc_info=True)
            _stop.wait(interval)

    def on_ready(sender=None, **kwargs) -> None:
        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        threading.Thread(target=heartbeat_loop, args=(hostname,), name="heartbeat", daemon=True).start()

    def on_shutdown(sender=None, **kwargs) -> None:
        _stop.set()
        hostname = getattr(sender, "hostname", None)
        if hostname:
            with app.app_context():
                db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.hostname == hostname))
                db.session.commit()

    def on_child_start(**kwargs) -> None:
        # A forked pool child must not reuse the parent's database connections.
        with app.app_context():
            db.engine.dispose(close=False)

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
    signals.worker_process_init.connect(on_child_start, weak=False)

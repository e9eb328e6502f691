from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, utcnow
from ..extensions import db


class WorkerHeartbeat(db.Model):
    """Written by every Celery worker every few seconds, so readiness can tell one is alive
    whatever the broker (kombu's SQLite transport has no broadcast for `celery inspect ping`)."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

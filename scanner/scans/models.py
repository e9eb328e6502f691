from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, new_uuid, utcnow
from ..extensions import db

STATUSES = ("pending", "scanning", "completed", "failed", "not_found")
CATEGORIES = (
    "malicious",
    "suspicious",
    "undetected",
    "harmless",
    "timeout",
    "confirmed-timeout",
    "failure",
    "type-unsupported",
)


class Scan(db.Model):
    __tablename__ = "scans"
    __table_args__ = (
        # `id` last: history pages order by (date, id) and read only ids, so a page, however deep,
        # is one walk of the index without touching the table (scanner/scans/results/services.py).
        Index("ix_scans_user_scan_date", "user_id", "scan_date", "id"),
        Index("ix_scans_user_created", "user_id", "created_at", "id"),
        Index("ix_scans_user_malicious", "user_id", "malicious"),
        Index("ix_scans_user_status", "user_id", "status"),
        Index("ix_scans_status_next_check", "status", "next_check_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="scan")  # scan | rescan
    status: Mapped[str] = mapped_column(String(16), default="pending")
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    never_upload: Mapped[bool] = mapped_column(default=False)
    vt_analysis_id: Mapped[str | None] = mapped_column(String(200))
    # What the lookup learnt, kept so that a step interrupted by a quota wait goes on from there
    # instead of paying for the lookup again: None (not asked yet), "unknown" (upload next) or
    # "stale" (VirusTotal has the file with old verdicts: ask for a new analysis next).
    vt_lookup: Mapped[str | None] = mapped_column(String(16))
    # Verdict counts, all eight VirusTotal categories.
    malicious: Mapped[int | None] = mapped_column()
    suspicious: Mapped[int | None] = mapped_column()
    undetected: Mapped[int | None] = mapped_column()
    harmless: Mapped[int | None] = mapped_column()
    timeout: Mapped[int | None] = mapped_column()
    confirmed_timeout: Mapped[int | None] = mapped_column()
    failure: Mapped[int | None] = mapped_column()
    type_unsupported: Mapped[int | None] = mapped_column()
    engines_total: Mapped[int | None] = mapped_column()
    detection_ratio: Mapped[str | None] = mapped_column(String(16))
    scan_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_source: Mapped[str | None] = mapped_column(String(16))  # virustotal | store
    attempts: Mapped[int] = mapped_column(default=0)  # steps begun since the last one that ended well
    polls: Mapped[int] = mapped_column(default=0)  # analysis polls so far, for the backoff
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # The request that started it: every worker line about it carries this id, even for a step
    # the sweep queued again (its message has none of its own).
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    file = relationship("File", lazy="joined")
    results = relationship(
        "EngineResult", cascade="all, delete-orphan", passive_deletes=True, order_by="EngineResult.engine_name"
    )


class EngineResult(db.Model):
    __tablename__ = "engine_results"
    # One verdict per engine per scan, whatever retries a task goes through.
    __table_args__ = (UniqueConstraint("scan_id", "engine_name", name="uq_engine_results_scan_engine"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    scan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    engine_name: Mapped[str] = mapped_column(String(100))
    engine_version: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(32))
    result: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(32))
    engine_update: Mapped[str | None] = mapped_column(String(32))


class ScanFlight(db.Model):
    """The one VirusTotal conversation about a sha256 that concurrent scans share."""

    __tablename__ = "scan_flights"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_scan_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    vt_analysis_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

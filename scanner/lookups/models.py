from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, new_uuid, utcnow
from ..extensions import db

LOOKUP_STATUSES = ("pending", "completed", "failed")
ITEM_STATUSES = ("pending", "completed", "failed", "cancelled")
JOB_STATUSES = ("pending", "running", "completed", "cancelled", "failed")
JOB_ACTIVE = ("pending", "running")
JOB_FINISHED = ("completed", "cancelled", "failed")
# What VirusTotal's answer was: `ok` (a report), `not_found` (it never saw the hash), `rate_limited`
# (no quota yet), `pending` (an analysis is running), `error` (it refused or kept failing).
PROVIDER_STATUSES = ("ok", "not_found", "rate_limited", "pending", "error")


class IndicatorWork:
    """One indicator to answer, and where the answer stands: the state machine shared by single
    lookups and bulk items (`steps.IndicatorSteps`, a work row of scanner/work.py). `stage` says
    what a pending row waits for, and `next_check_at` when it is due (or, while a worker holds it,
    when its lease ends)."""

    ioc: Mapped[str] = mapped_column(String(2048))  # normalised
    ioc_type: Mapped[str] = mapped_column(String(8))  # ipv4 ipv6 domain url md5 sha1 sha256
    force_refresh: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # new (bulk: not yet checked locally) | queued | waiting_for_quota | waiting_for_analysis | retrying
    # | done | failed | cancelled
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    vt_analysis_id: Mapped[str | None] = mapped_column(String(200))
    # "unknown" once VirusTotal said it never saw this URL: the next step submits it directly.
    vt_lookup: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)  # steps begun since the last one that ended well
    polls: Mapped[int] = mapped_column(default=0)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(16))  # cache | database | virustotal
    provider_status: Mapped[str | None] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column()
    explanation: Mapped[str | None] = mapped_column(String(255))
    malicious_count: Mapped[int | None] = mapped_column()
    suspicious_count: Mapped[int | None] = mapped_column()
    harmless_count: Mapped[int | None] = mapped_column()
    undetected_count: Mapped[int | None] = mapped_column()
    reputation: Mapped[int | None] = mapped_column()
    report_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when VirusTotal gave the report
    latency_ms: Mapped[int | None] = mapped_column()  # time spent getting the answer
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def keep_details(self, details: dict[str, Any]) -> None:
        """Evidence worth keeping beyond the counts; only a single lookup keeps it."""


class Lookup(IndicatorWork, db.Model):
    __tablename__ = "lookups"
    __table_args__ = (
        Index("ix_lookups_user_created", "user_id", "created_at", "id"),
        Index("ix_lookups_user_type", "user_id", "ioc_type"),
        Index("ix_lookups_user_verdict", "user_id", "verdict"),
        Index("ix_lookups_status_next_check", "status", "next_check_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Evidence (flagging engines), type-specific details and the permalink, as they were when answered.
    details: Mapped[dict | None] = mapped_column(JSON)
    total_ms: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    user = relationship("User")
    notes: Mapped[list[LookupNote]] = relationship(
        back_populates="lookup", order_by="LookupNote.created_at", cascade="all, delete-orphan"
    )

    def keep_details(self, details: dict[str, Any]) -> None:
        self.details = details


class LookupNote(db.Model):
    __tablename__ = "lookup_notes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    lookup_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lookups.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lookup: Mapped[Lookup] = relationship(back_populates="notes")
    author = relationship("User", lazy="joined")


class BulkJob(db.Model):
    """A list of indicators answered in the background. Its state lives in rows (the job and one
    item per indicator), so a worker restart loses nothing: `next_run_at` says when it wants to
    run again or, while a worker drives it, when that worker's lease ends (scanner/work.py)."""

    __tablename__ = "bulk_jobs"
    __table_args__ = (
        Index("ix_bulk_jobs_user_created", "user_id", "created_at"),
        Index("ix_bulk_jobs_status_next_run", "status", "next_run_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    total_iocs: Mapped[int] = mapped_column(default=0)  # unique valid indicators
    invalid_count: Mapped[int] = mapped_column(default=0)
    duplicate_count: Mapped[int] = mapped_column(default=0)
    invalid_lines: Mapped[list] = mapped_column(JSON, default=list)  # the first ones: {line, value, reason}
    error: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)  # slices begun since the last one that ended well
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BulkItem(IndicatorWork, db.Model):
    __tablename__ = "bulk_items"
    __table_args__ = (
        UniqueConstraint("job_id", "line", name="uq_bulk_items_job_line"),
        Index("ix_bulk_items_job_status_next", "job_id", "status", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bulk_jobs.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column()  # where the indicator first appeared in the upload


class HashAlias(db.Model):
    """md5 or sha1 -> sha256, learnt from VirusTotal's file reports: a report is stored once, under
    its sha256, and a lookup by another hash of the same file finds it without a request."""

    __tablename__ = "file_hash_aliases"

    alias: Mapped[str] = mapped_column(String(40), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

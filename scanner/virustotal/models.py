from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, utcnow
from ..extensions import db


class IndicatorReport(db.Model):
    """What VirusTotal last said about an indicator: the persistent cache behind every lookup
    and every file scan (type `file` keyed by sha256)."""

    __tablename__ = "indicator_reports"
    __table_args__ = (UniqueConstraint("type", "value", name="uq_indicator_reports_type_value"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(16))  # file | url | domain | ip
    value: Mapped[str] = mapped_column(String(2048))
    report: Mapped[dict] = mapped_column(JSON)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuotaBudget(db.Model):
    """One VirusTotal key's budget in the SQL quota store (embedded mode, or without Redis).

    The row is what concurrent callers lock to take turns; it also carries the UTC day's count
    and the block set after VirusTotal answered 429. Times are Unix seconds of the database's
    clock on PostgreSQL, so machines with skewed clocks still share one window.
    """

    __tablename__ = "vt_quota_budgets"

    budget_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the key's fingerprint
    day: Mapped[int] = mapped_column(default=0)  # days since the epoch, UTC
    day_used: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)


class QuotaGrant(db.Model):
    """A request granted within the sliding window; older rows are pruned as tokens are taken."""

    __tablename__ = "vt_quota_grants"
    __table_args__ = (Index("ix_vt_quota_grants_budget_id_granted_at", "budget_id", "granted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    budget_id: Mapped[str] = mapped_column(ForeignKey("vt_quota_budgets.budget_id", ondelete="CASCADE"))
    granted_at: Mapped[float] = mapped_column(Float)

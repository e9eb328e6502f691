from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class RequestCount(db.Model):
    """Requests per hour (hours since the epoch), route template and status, where Redis is not
    there to count them (embedded mode, or an outage)."""

    __tablename__ = "request_counts"

    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    route: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class CounterTotal(db.Model):
    """A shared counter's total for one set of label values (a JSON list), where Redis is not there
    to keep it (embedded mode, or an outage)."""

    __tablename__ = "counter_totals"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    labels: Mapped[str] = mapped_column(String(400), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)

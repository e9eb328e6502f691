"""Our own copy of what VirusTotal said, per indicator: seed 000's persistent cache.

Reports are kept as VirusTotal's `data` object (`type`, `id`, `attributes`), whichever call
produced them, so file scans and indicator lookups share one store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..db_types import utcnow
from ..extensions import db
from ..upsert import upsert
from .models import IndicatorReport

_SAVE = upsert(
    IndicatorReport.__table__, ("type", "value", "report", "fetched_at"), ("type", "value"), ("report", "fetched_at")
)


def get_report(type_: str, value: str) -> IndicatorReport | None:
    # Another process may have replaced the report since this session last read it.
    return db.session.scalar(
        select(IndicatorReport)
        .where(IndicatorReport.type == type_, IndicatorReport.value == value)
        .execution_options(populate_existing=True)
    )


def save_report(type_: str, value: str, report: dict[str, Any], fetched_at: datetime | None = None) -> None:
    """Insert or replace in one statement, so two workers saving the same indicator never collide."""
    values = {"type": type_, "value": value, "report": report, "fetched_at": fetched_at or utcnow()}
    db.session.execute(_SAVE, values)
    # The identity map may hold the old row; reads after this must see the new one. Only report
    # rows: expiring everything would read every other object of the session again.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, IndicatorReport):
            db.session.expire(obj)


def file_object_from_analysis(analysis: dict[str, Any]) -> dict[str, Any]:
    """A file object in the shape of GET /files/{id}, built from a completed analysis, so a scan
    that uploaded a file needs no further request to learn its verdicts."""
    data, meta = analysis.get("data") or {}, analysis.get("meta") or {}
    attributes, info = data.get("attributes") or {}, meta.get("file_info") or {}
    return {
        "type": "file",
        "id": info.get("sha256"),
        "attributes": {
            "sha256": info.get("sha256"),
            "sha1": info.get("sha1"),
            "md5": info.get("md5"),
            "size": info.get("size"),
            "last_analysis_date": attributes.get("date"),
            "last_analysis_stats": attributes.get("stats") or {},
            "last_analysis_results": attributes.get("results") or {},
        },
    }

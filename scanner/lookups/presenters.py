"""Lookups, bulk jobs and their items as the API shows them (seed 002's shapes), as plain data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..db_types import utcnow
from ..jsonable import attributes, json_default
from ..scans.results.exports import csv_line
from . import steps
from .models import BulkItem, BulkJob, IndicatorWork, Lookup, LookupNote

PROVIDER = "virustotal"
# VirusTotal's engine counts as a lookup or a bulk item stores them.
COUNTS = ("malicious_count", "suspicious_count", "harmless_count", "undetected_count")


def report_age_seconds(row: IndicatorWork) -> int | None:
    """How long ago VirusTotal gave the report this answer rests on."""
    if row.report_fetched_at is None:
        return None
    return max(int((utcnow() - row.report_fetched_at).total_seconds()), 0)


def _cached(row: IndicatorWork) -> bool:
    return row.source in ("cache", "database")


def provider_entry(lookup: Lookup, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    details = lookup.details or {}
    entry = {
        "provider": PROVIDER,
        "status": lookup.provider_status or "pending",
        **attributes(lookup, "latency_ms", "reputation", *COUNTS),
        "evidence": details.get("evidence") or [],
        "context": details.get("context") or {},
        "last_analysis_date": _epoch(details.get("last_analysis_date")),
        "permalink": details.get("permalink"),
        "error": lookup.error,
    }
    if raw is not None:
        entry["raw"] = raw
    return entry


def _epoch(seconds: int | None) -> datetime | None:
    """VirusTotal's dates are Unix seconds; the API's are ISO 8601."""
    return datetime.fromtimestamp(int(seconds), UTC) if seconds else None


def summary(row: IndicatorWork) -> dict[str, Any]:
    return {"verdict": row.verdict or "unknown", "score": row.score, "explanation": row.explanation or ""}


def lookup_result(lookup: Lookup, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST /api/check_ioc's answer: seed 002's shape, plus where the answer came from and its age."""
    return {
        "lookup_id": lookup.id,
        "status": lookup.status,
        "ioc": lookup.ioc,
        "ioc_type": lookup.ioc_type,
        "providers": [provider_entry(lookup, raw)],
        "summary": summary(lookup),
        "timing": {"total_ms": lookup.total_ms},
        "cached": _cached(lookup),
        "source": lookup.source,
        "report_age_seconds": report_age_seconds(lookup),
        "fetched_at": lookup.report_fetched_at,
        "created_at": lookup.created_at,
        "finished_at": lookup.finished_at,
        "error": lookup.error if lookup.status == "failed" else None,
    }


def note_view(note: LookupNote) -> dict[str, Any]:
    author = note.author
    return {
        "id": note.id,
        "text": note.text,
        "author": {"id": author.id, "username": author.username} if author else None,
        "created_at": note.created_at,
    }


def lookup_detail(lookup: Lookup, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """GET /api/lookup/{id}: seed 002's shape, plus status, explanation, source and notes."""
    owner = lookup.user
    ind = steps.indicator_of(lookup)
    return {
        "id": lookup.id,
        "ioc": {"id": ind.ioc_id, "value": lookup.ioc, "type": lookup.ioc_type},
        "user": {"id": owner.id, "email": owner.email, "role": owner.role},
        "status": lookup.status,
        "started_at": lookup.created_at,
        "finished_at": lookup.finished_at,
        "score": lookup.score,
        "verdict": lookup.verdict or "unknown",
        "explanation": lookup.explanation or "",
        "provider_results": [provider_entry(lookup, raw)],
        "notes": [note_view(note) for note in lookup.notes],
        "cached": _cached(lookup),
        "source": lookup.source,
        "report_age_seconds": report_age_seconds(lookup),
        "error": lookup.error if lookup.status == "failed" else None,
    }


def history_row(lookup: Lookup) -> dict[str, Any]:
    return {
        **attributes(lookup, "id", "ioc", "ioc_type", "status"),
        "verdict": lookup.verdict or "unknown",
        **attributes(lookup, "score", "malicious_count", "source", "created_at", "finished_at"),
    }


def item_view(item: BulkItem) -> dict[str, Any]:
    return {
        **attributes(item, "line", "ioc", "ioc_type", "status"),
        "verdict": item.verdict or "unknown",
        **attributes(item, "score", "explanation", *COUNTS, "reputation", "provider_status", "source"),
        "cached": _cached(item),
        "report_age_seconds": report_age_seconds(item),
        "error": item.error if item.status == "failed" else None,
        "finished_at": item.finished_at,
    }


def job_counts(job: BulkJob, counts: dict[str, int]) -> dict[str, Any]:
    return {
        **attributes(job, "id", "status", "total_iocs"),
        "processed_iocs": counts["processed"],
        "completed_iocs": counts["completed"],
        "failed_iocs": counts["failed"],
        "pending_iocs": counts["pending"],
        "cancelled_iocs": counts["cancelled"],
    }


def job_view(job: BulkJob, counts: dict[str, int]) -> dict[str, Any]:
    return {
        **job_counts(job, counts),
        **attributes(job, "filename", "invalid_count", "duplicate_count"),
        "invalid_lines": job.invalid_lines or [],
        **attributes(job, "created_at", "started_at", "finished_at", "error"),
    }


# -- bulk exports -------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "line",
    "ioc",
    "ioc_type",
    "status",
    "verdict",
    "score",
    "explanation",
    "malicious_count",
    "suspicious_count",
    "harmless_count",
    "undetected_count",
    "reputation",
    "provider_status",
    "source",
    "report_age_seconds",
    "error",
    "finished_at",
)


def export_csv(items: Iterable[BulkItem]) -> Iterator[str]:
    """One row per indicator, in upload order; cells that a spreadsheet would run are defused."""
    yield csv_line(EXPORT_COLUMNS)
    for item in items:
        row = item_view(item)
        yield csv_line(row[column] for column in EXPORT_COLUMNS)


def export_json(job: dict[str, Any], items: Iterable[BulkItem]) -> Iterator[str]:
    """`{"job": {...}, "results": [...]}`, written an item at a time."""
    yield '{"job":' + json.dumps(job, default=json_default) + ',"results":['
    for i, item in enumerate(items):
        yield ("," if i else "") + json.dumps(item_view(item), default=json_default)
    yield "]}"

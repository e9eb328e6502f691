"""What a scan report says, as plain data: verdicts, ratios, engine rows. No I/O.

The dicts built here are what the read cache stores and what the JSON, CSV and PDF exports
render, so every representation of a scan agrees.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ...files.models import File
from ...jsonable import attributes
from ..models import CATEGORIES, EngineResult, Scan

VIRUSTOTAL_FILE_URL = "https://www.virustotal.com/gui/file/{sha256}"
VERDICTS = ("malicious", "suspicious", "clean", "unknown")
FINISHED = ("completed", "failed", "not_found")

# Scan column per VirusTotal category (the column names cannot carry hyphens).
CATEGORY_COLUMNS = {category: category.replace("-", "_") for category in CATEGORIES}
# Worst first: the order the PDF lists engines and the exports rank categories in.
SEVERITY = (
    "malicious",
    "suspicious",
    "undetected",
    "harmless",
    "type-unsupported",
    "failure",
    "timeout",
    "confirmed-timeout",
)


def permalink(sha256: str) -> str:
    return VIRUSTOTAL_FILE_URL.format(sha256=sha256)


def verdict(
    status: str, malicious: int | None, suspicious: int | None, undetected: int | None, harmless: int | None
) -> str:
    """One word for the scan. Only a completed scan has one; `clean` needs at least one engine
    that judged the file, so a scan where every engine timed out or gave up stays `unknown`.
    `services.verdict_condition` is the same rule in SQL."""
    if status != "completed":
        return "unknown"
    if (malicious or 0) > 0:
        return "malicious"
    if (suspicious or 0) > 0:
        return "suspicious"
    if (undetected or 0) + (harmless or 0) > 0:
        return "clean"
    return "unknown"


def scan_verdict(scan: Scan) -> str:
    return verdict(scan.status, scan.malicious, scan.suspicious, scan.undetected, scan.harmless)


def engine_update_date(value: str | None) -> date | None:
    """VirusTotal's `engine_update` is "YYYYMMDD"; anything else is dropped rather than guessed."""
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), "%Y%m%d").date()
    except ValueError:
        return None


# Seed 001's summary in its order: VirusTotal's categories by their own names (hyphens and all).
_SUMMARY = (
    "malicious",
    "suspicious",
    "undetected",
    "timeout",
    "detection_ratio",
    "harmless",
    "confirmed-timeout",
    "failure",
    "type-unsupported",
    "engines_total",
)


def summary(scan: Scan) -> dict[str, Any]:
    return {key: getattr(scan, CATEGORY_COLUMNS.get(key, key)) for key in _SUMMARY}


def engine_row(result: EngineResult) -> dict[str, Any]:
    return {
        **attributes(result, "engine_name", "engine_version", "result", "category"),
        "update_date": engine_update_date(result.engine_update),
        "method": result.method,
    }


def file_fields(file: File) -> dict[str, Any]:
    return {
        "file_id": file.id,
        **attributes(file, "filename", "file_size", "mime_type"),
        **attributes(file, hash_md5="md5", hash_sha1="sha1", hash_sha256="sha256"),
        "permalink": permalink(file.sha256),
    }


def scan_row(scan: Scan) -> dict[str, Any]:
    """A scan without its engines: one line of the history."""
    return {
        **attributes(scan, "id", scan_id="id"),
        "user_id": scan.user_id,
        **file_fields(scan.file),
        **attributes(scan, "kind", "status", "stage", "error"),
        "verdict": scan_verdict(scan),
        **attributes(scan, "detection_ratio", *CATEGORY_COLUMNS.values(), "engines_total", "scan_date"),
        **attributes(scan, "created_at", "completed_at"),
    }


def scan_report(scan: Scan, engines: list[EngineResult]) -> dict[str, Any]:
    """The full report of one scan: the history row, every engine's verdict and the summary."""
    return {
        **scan_row(scan),
        "results": [engine_row(result) for result in engines],
        "summary": summary(scan),
    }


def by_severity(engines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Detections first, then by engine name: the order a reader wants on paper."""
    rank = {category: i for i, category in enumerate(SEVERITY)}
    return sorted(engines, key=lambda e: (rank.get(e["category"], len(rank)), (e["engine_name"] or "").lower()))

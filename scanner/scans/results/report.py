"""What a scan report says, as plain data: verdicts, ratios, engine rows. No I/O.

The dicts built here are what the read cache stores and what the JSON, CSV and PDF exports
render, so every representation of a scan agrees.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ...files.models import File
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


def summary(scan: Scan) -> dict[str, Any]:
    counts = {category: getattr(scan, column) for category, column in CATEGORY_COLUMNS.items()}
    return {
        "malicious": counts["malicious"],
        "suspicious": counts["suspicious"],
        "undetected": counts["undetected"],
        "timeout": counts["timeout"],
        "detection_ratio": scan.detection_ratio,
        "harmless": counts["harmless"],
        "confirmed-timeout": counts["confirmed-timeout"],
        "failure": counts["failure"],
        "type-unsupported": counts["type-unsupported"],
        "engines_total": scan.engines_total,
    }


def engine_row(result: EngineResult) -> dict[str, Any]:
    return {
        "engine_name": result.engine_name,
        "engine_version": result.engine_version,
        "result": result.result,
        "category": result.category,
        "update_date": engine_update_date(result.engine_update),
        "method": result.method,
    }


def file_fields(file: File) -> dict[str, Any]:
    return {
        "file_id": file.id,
        "filename": file.filename,
        "file_size": file.file_size,
        "mime_type": file.mime_type,
        "hash_md5": file.md5,
        "hash_sha1": file.sha1,
        "hash_sha256": file.sha256,
        "permalink": permalink(file.sha256),
    }


def scan_row(scan: Scan) -> dict[str, Any]:
    """A scan without its engines: one line of the history."""
    return {
        "id": scan.id,
        "scan_id": scan.id,
        "user_id": scan.user_id,
        **file_fields(scan.file),
        "kind": scan.kind,
        "status": scan.status,
        "stage": scan.stage,
        "error": scan.error,
        "verdict": scan_verdict(scan),
        "detection_ratio": scan.detection_ratio,
        **{column: getattr(scan, column) for column in CATEGORY_COLUMNS.values()},
        "engines_total": scan.engines_total,
        "scan_date": scan.scan_date,
        "created_at": scan.created_at,
        "completed_at": scan.completed_at,
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

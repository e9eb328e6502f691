"""Scan reports and history as downloads: JSON, CSV (and PDF, from pdf.py), with the HTTP headers
that make a browser save them under a safe name."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from flask import Response, stream_with_context

from ...jsonable import json_default
from .schemas import ScanExportSchema, ScanHistoryExportItemSchema

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ENGINE_COLUMNS = (
    "scan_id",
    "filename",
    "sha256",
    "scan_date",
    "engine_name",
    "engine_version",
    "update_date",
    "category",
    "result",
    "method",
)
HISTORY_COLUMNS = (
    "scan_id",
    "file_id",
    "filename",
    "hash_sha256",
    "hash_sha1",
    "hash_md5",
    "file_size",
    "mime_type",
    "kind",
    "status",
    "verdict",
    "detection_ratio",
    "malicious",
    "suspicious",
    "undetected",
    "harmless",
    "timeout",
    "confirmed_timeout",
    "failure",
    "type_unsupported",
    "engines_total",
    "scan_date",
    "created_at",
    "completed_at",
    "error",
    "permalink",
)
MIMETYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\"]+')


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that would start a formula gets a leading apostrophe, which spreadsheets show
    as text; numbers and everything else pass through."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return spreadsheet_safe(value)


def csv_line(values: Iterable[Any]) -> str:
    """One CSV row; cells that a spreadsheet would run are defused."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(v) for v in values])
    return buffer.getvalue()


def report_json(report: dict[str, Any], generated_at: datetime) -> bytes:
    body = ScanExportSchema().dump({**report, "generated_at": generated_at})
    return json.dumps(body, indent=2, ensure_ascii=False).encode()


def report_csv(report: dict[str, Any]) -> bytes:
    """One row per engine, each carrying the scan and file it belongs to."""
    scan = {"scan_id": report["scan_id"], "filename": report["filename"], "sha256": report["hash_sha256"]}
    scan["scan_date"] = report["scan_date"]
    lines = [csv_line(ENGINE_COLUMNS)]
    lines += [csv_line({**scan, **engine}[c] for c in ENGINE_COLUMNS) for engine in report["results"]]
    return "".join(lines).encode()


def report_pdf(report: dict[str, Any], generated_at: datetime) -> bytes:
    # reportlab is a tenth of the import time of every web, worker and beat process; only a
    # PDF export needs it.
    from .pdf import render_pdf

    return render_pdf(report, generated_at)


def history_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield csv_line(HISTORY_COLUMNS)
    for row in rows:
        yield csv_line(row.get(c) for c in HISTORY_COLUMNS)


def history_json(rows: Iterable[dict[str, Any]], meta: dict[str, Any]) -> Iterator[str]:
    """`{...meta, "scans": [...]}`, written a scan at a time."""
    head = json.dumps({**meta, "scans": []}, default=json_default)
    yield head[: -len("[]}")] + "["
    schema = ScanHistoryExportItemSchema()
    for i, row in enumerate(rows):
        yield ("," if i else "") + json.dumps(schema.dump(row), ensure_ascii=False)
    yield "]}"


def download_name(original: str | None, fallback_stem: str, extension: str) -> tuple[str, str | None]:
    """(ASCII name for `filename=`, a name built from the user's file name for `filename*=`)."""
    fallback = f"{fallback_stem}.{extension}"
    if not original:
        return fallback, None
    cleaned = _UNSAFE_NAME.sub("_", original).strip(" .")[:120]
    return fallback, (f"{cleaned}.scan-report.{extension}" if cleaned else None)


def content_disposition(fallback: str, preferred: str | None = None) -> str:
    """`attachment` with a plain ASCII name every client understands, plus the RFC 5987/6266
    UTF-8 form (`filename*`) that modern clients prefer."""
    value = f'attachment; filename="{fallback}"'
    if preferred and preferred != fallback:
        value += f"; filename*=UTF-8''{quote(preferred, safe='')}"
    return value


def download(
    body: bytes | Iterator[str],
    fmt: str,
    fallback: str,
    preferred: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A file download; an iterator body is streamed (inside the request context)."""
    content = stream_with_context(body) if not isinstance(body, bytes) else body
    response = Response(content, content_type=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = content_disposition(fallback, preferred)
    # Scan reports are private: no shared cache may keep them.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response

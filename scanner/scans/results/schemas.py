from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from marshmallow import Schema, fields, post_load, validate, validates_schema

from ...db_types import SQL_INT_MAX
from ...request_args import (
    CommaList,
    DateOrDateTime,
    PaginationSchema,
    SortBy,
    check_history_args,
    exclusive_end,
    parse_sort,
    split,
)
from ..models import STATUSES
from .query import SORT_KEYS, HistoryQuery
from .report import VERDICTS

RATIO_DESCRIPTION = (
    "malicious / engines that gave a verdict (malicious + suspicious + undetected + harmless); "
    "timeouts, failures and unsupported types are left out"
)
VERDICT_DESCRIPTION = (
    "malicious: at least one engine detected it; suspicious: none did, some found it suspicious; "
    "clean: engines judged it and none flagged it; unknown: not completed, or no engine gave a verdict"
)
MAX_PER_PAGE = 100


class ScanHistoryFilterSchema(Schema):
    status = CommaList(
        STATUSES,
        metadata={"description": f"One or more (comma-separated) of {', '.join(STATUSES)}"},
    )
    verdict = CommaList(
        VERDICTS,
        metadata={"description": f"One or more (comma-separated) of {', '.join(VERDICTS)}. {VERDICT_DESCRIPTION}"},
    )
    detection_min = fields.Integer(
        validate=validate.Range(min=0, max=SQL_INT_MAX),
        metadata={"description": "At least this many engines detected it malicious"},
    )
    detection_max = fields.Integer(
        validate=validate.Range(min=0, max=SQL_INT_MAX),
        metadata={"description": "At most this many engines detected it malicious"},
    )
    date_from = DateOrDateTime(
        metadata={"description": "Scan date from (ISO 8601 date or date-time, UTC unless given)"}
    )
    date_to = DateOrDateTime(metadata={"description": "Scan date to, inclusive; a bare date includes that whole day"})
    filename = fields.String(
        validate=validate.Length(min=1, max=255), metadata={"description": "Part of the file name, any case"}
    )
    hash = fields.String(
        validate=validate.Regexp(r"^[0-9a-fA-F]{4,64}$", error="A hash prefix is 4 to 64 hexadecimal digits."),
        metadata={"description": "Start of the file's SHA-256, SHA-1 or MD5 (at least 4 hex digits)"},
    )
    sort_by = SortBy(
        SORT_KEYS,
        "scan_date",
        metadata={
            "description": f"A key, or several with directions: detection_ratio:desc,scan_date:asc. Keys: "
            f"{', '.join(SORT_KEYS)}. detection_ratio sorts by malicious count, then by engines that gave a "
            "verdict. Scans without a result (pending) sort last either way."
        },
    )
    sort_order = fields.String(
        load_default="desc",
        validate=validate.OneOf(("asc", "desc")),
        metadata={"description": "Direction for keys given without one"},
    )

    @validates_schema
    def _check_ranges(self, data: dict, **kwargs) -> None:
        # detection_min above detection_max, like a date range that ends before it starts, selects nothing.
        check_history_args(data, SORT_KEYS)

    @post_load
    def _to_query(self, data: dict, **kwargs) -> HistoryQuery:
        date_from, date_to = data.get("date_from"), data.get("date_to")
        return HistoryQuery(
            statuses=split(data.get("status")),
            verdicts=split(data.get("verdict")),
            detection_min=data.get("detection_min"),
            detection_max=data.get("detection_max"),
            date_from=date_from[0] if date_from else None,
            date_before=exclusive_end(date_to) if date_to else None,
            filename=data.get("filename"),
            hash_prefix=(data.get("hash") or "").lower() or None,
            sort=parse_sort(data["sort_by"], SORT_KEYS, data["sort_order"]),
            page=data.get("page", 1),
            per_page=data.get("per_page", MAX_PER_PAGE),
        )


class ScanHistoryArgsSchema(ScanHistoryFilterSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(
        load_default=10,
        validate=validate.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"At most {MAX_PER_PAGE}"},
    )


class UserScansArgsSchema(ScanHistoryArgsSchema):
    per_page = fields.Integer(
        load_default=MAX_PER_PAGE,
        validate=validate.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"At most {MAX_PER_PAGE}"},
    )


class ScanHistoryExportArgsSchema(ScanHistoryFilterSchema):
    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "json")))

    @post_load
    def _to_query(self, data: dict, **kwargs) -> dict[str, Any]:
        return {"query": super()._to_query(data, **kwargs), "format": data["format"]}


class ScanExportArgsSchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "pdf")))


class SignatureDate(fields.DateTime):
    """VirusTotal dates an engine's signatures by day; seed 001 shows `update_date` as a
    date-time, so the day is given as its start in UTC."""

    def _serialize(self, value: Any, attr, obj, **kwargs) -> str | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time(), tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class EngineResultSchema(Schema):
    engine_name = fields.String()
    engine_version = fields.String(allow_none=True)
    result = fields.String(allow_none=True, metadata={"description": "The engine's label, e.g. a malware name"})
    category = fields.String(
        metadata={
            "description": "malicious, suspicious, undetected, harmless, timeout, confirmed-timeout, failure "
            "or type-unsupported"
        }
    )
    update_date = SignatureDate(
        allow_none=True, metadata={"description": "Date of the engine's signatures (00:00 UTC of that day)"}
    )
    method = fields.String(allow_none=True)


class ScanSummarySchema(Schema):
    malicious = fields.Integer(allow_none=True)
    suspicious = fields.Integer(allow_none=True)
    undetected = fields.Integer(allow_none=True)
    timeout = fields.Integer(allow_none=True)
    detection_ratio = fields.String(allow_none=True, metadata={"description": RATIO_DESCRIPTION})
    harmless = fields.Integer(allow_none=True)
    confirmed_timeout = fields.Integer(allow_none=True, data_key="confirmed-timeout", attribute="confirmed-timeout")
    failure = fields.Integer(allow_none=True)
    type_unsupported = fields.Integer(allow_none=True, data_key="type-unsupported", attribute="type-unsupported")
    engines_total = fields.Integer(allow_none=True)


class ScannedFileSchema(Schema):
    hash_md5 = fields.String()
    hash_sha1 = fields.String()
    hash_sha256 = fields.String()
    file_size = fields.Integer()
    mime_type = fields.String()
    permalink = fields.String(metadata={"description": "The file on VirusTotal's website"})


class ScanResultsSchema(ScannedFileSchema):
    scan_id = fields.UUID()
    file_id = fields.UUID()
    filename = fields.String()
    status = fields.String(metadata={"description": ", ".join(STATUSES)})
    detection_ratio = fields.String(allow_none=True, metadata={"description": RATIO_DESCRIPTION})
    scan_date = fields.DateTime(allow_none=True, metadata={"description": "When VirusTotal analysed the file"})
    results = fields.List(fields.Nested(EngineResultSchema))
    summary = fields.Nested(ScanSummarySchema)
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    kind = fields.String(metadata={"description": "scan or rescan"})
    stage = fields.String(metadata={"description": "Where an unfinished scan is"})
    error = fields.String(allow_none=True, metadata={"description": "Why a scan failed"})
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


class ScanExportSchema(ScanResultsSchema):
    generated_at = fields.DateTime()


class ScanHistoryItemSchema(Schema):
    id = fields.UUID()
    file_id = fields.UUID()
    filename = fields.String()
    status = fields.String()
    detection_ratio = fields.String(allow_none=True, metadata={"description": RATIO_DESCRIPTION})
    scan_date = fields.DateTime(allow_none=True)
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    malicious = fields.Integer(allow_none=True)
    engines_total = fields.Integer(allow_none=True)
    hash_sha256 = fields.String()
    kind = fields.String()
    created_at = fields.DateTime()


class ScanHistoryExportItemSchema(ScanHistoryItemSchema, ScannedFileSchema):
    suspicious = fields.Integer(allow_none=True)
    undetected = fields.Integer(allow_none=True)
    harmless = fields.Integer(allow_none=True)
    timeout = fields.Integer(allow_none=True)
    confirmed_timeout = fields.Integer(allow_none=True)
    failure = fields.Integer(allow_none=True)
    type_unsupported = fields.Integer(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)


class ScanHistoryPageSchema(Schema):
    scans = fields.List(fields.Nested(ScanHistoryItemSchema))
    pagination = fields.Nested(PaginationSchema)


class FileScanSchema(Schema):
    id = fields.UUID()
    status = fields.String()
    detection_ratio = fields.String(allow_none=True, metadata={"description": RATIO_DESCRIPTION})
    scan_date = fields.DateTime(allow_none=True)
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    kind = fields.String()
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)


class UserScanSchema(Schema):
    id = fields.UUID()
    file_id = fields.UUID()
    status = fields.String()
    detection_ratio = fields.String(allow_none=True, metadata={"description": RATIO_DESCRIPTION})
    scan_date = fields.DateTime(allow_none=True)
    filename = fields.String()
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    kind = fields.String()
    created_at = fields.DateTime()

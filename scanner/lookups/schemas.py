from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from ..db_types import SQL_INT_MAX
from ..errors import InvalidIndicator
from ..request_args import (
    CommaList,
    DateOrDateTime,
    PaginationSchema,
    SortBy,
    check_history_args,
    exclusive_end,
    parse_sort,
    split,
)
from ..request_parser import NON_BLANK_TEXT_PATTERN, StrictBoolean
from .indicators import EXPECTED, IOC_TYPES, parse
from .models import ITEM_STATUSES, JOB_STATUSES, LOOKUP_STATUSES, PROVIDER_STATUSES
from .scoring import VERDICTS
from .services import ENDPOINT_TYPES, SORT_KEYS, LookupQuery

MAX_PER_PAGE = 100
MAX_ITEMS_PER_PAGE = 500
# Not a JSON Schema format: the document names the grammar of `indicators.parse` (public IP
# addresses, domains, URLs, hashes; defanged forms re-armed); indicator-<type> is one kind of it.
INDICATOR_FORMAT = "indicator"
IOC_DESCRIPTION = (
    f"{EXPECTED[0].upper()}{EXPECTED[1:]}. Values are normalised (lower-case hashes and domains, IDNA "
    "domains, canonical URLs); defanged forms such as hxxp://evil[.]com are accepted. Private, loopback, "
    "reserved and multicast addresses, and names such as localhost, are refused: VirusTotal knows nothing of them."
)
SCORE_DESCRIPTION = (
    "0-100, null when the verdict is unknown. clean 0-19, suspicious 20-49, malicious 50-100; within a band, "
    "how many engines agree (see the README's scoring rule)"
)
VERDICT_DESCRIPTION = (
    "malicious: at least one engine flags it; suspicious: none does, some find it suspicious; clean: engines "
    "judged it and none flagged it; unknown: no usable report (never seen, waiting for quota or an analysis, "
    "failed) or no engine gave a verdict"
)
SOURCE_DESCRIPTION = "cache, database (our stored report) or virustotal (asked just now); null while pending"


# -- requests ---------------------------------------------------------------------------------


_FORCE_REFRESH = {
    "load_default": False,
    "metadata": {"description": "Skip the cache and our stored report; ask VirusTotal"},
}
_SHOW_RAW = {"load_default": False, "metadata": {"description": "Include VirusTotal's whole object"}}


class CheckIocSchema(Schema):
    ioc = fields.String(
        required=True, metadata={"description": IOC_DESCRIPTION, "example": "8.8.8.8", "format": INDICATOR_FORMAT}
    )
    force_refresh = StrictBoolean(**_FORCE_REFRESH)
    show_raw = StrictBoolean(**_SHOW_RAW)


class StreamIocArgsSchema(CheckIocSchema):
    force_refresh = fields.Boolean(**_FORCE_REFRESH)
    show_raw = fields.Boolean(**_SHOW_RAW)


class ShowRawArgsSchema(Schema):
    show_raw = fields.Boolean(load_default=False, metadata={"description": "Include VirusTotal's whole object"})


class NoteInSchema(Schema):
    text = fields.String(
        required=True, validate=validate.Length(min=1, max=4000), metadata={"pattern": NON_BLANK_TEXT_PATTERN}
    )

    @validates_schema
    def _not_blank(self, data: dict, **kwargs: Any) -> None:
        if not data.get("text", "").strip():
            raise ValidationError("A note cannot be blank", "text")


ENDPOINT_EXAMPLES = {
    "domain": "google.com",
    "ip": "8.8.8.8",
    "file": "44d88612fea8a8f36de82e1278abb02f",
    "url": "https://www.virustotal.com/",
}


def _endpoint_variant(vt_type: str) -> dict[str, Any]:
    names = [name for name, kind in ENDPOINT_TYPES.items() if kind == vt_type]
    value = {"type": "string", "format": f"{INDICATOR_FORMAT}-{vt_type}", "example": ENDPOINT_EXAMPLES[vt_type]}
    return {
        "type": "object",
        "title": vt_type,
        "required": ["endpoint_type", "endpoint_value"],
        "properties": {"endpoint_type": {"type": "string", "enum": names}, "endpoint_value": value},
        "additionalProperties": False,
    }


class EndpointReportInSchema(Schema):
    class Meta:
        # The value must be of the kind the type names ("google.com" is refused as an ip): one
        # variant per kind.
        openapi = {
            "properties": None,
            "required": None,
            "additionalProperties": None,
            "oneOf": [_endpoint_variant(vt_type) for vt_type in dict.fromkeys(ENDPOINT_TYPES.values())],
        }

    endpoint_type = fields.String(
        required=True,
        validate=validate.OneOf(tuple(ENDPOINT_TYPES)),
        metadata={"description": "domain, ip, file (a hash) or url"},
    )
    endpoint_value = fields.String(
        required=True,
        metadata={
            "description": "Of the kind endpoint_type names (format indicator-domain, indicator-ip, indicator-file: "
            "a hash, indicator-url: a URL or a bare host)",
        },
    )


class LookupHistoryArgsSchema(Schema):
    type = CommaList(IOC_TYPES, metadata={"description": f"One or more of {', '.join(IOC_TYPES)}"})
    verdict = CommaList(
        VERDICTS,
        metadata={"description": f"One or more of {', '.join(VERDICTS)}. {VERDICT_DESCRIPTION}"},
    )
    status = CommaList(
        LOOKUP_STATUSES,
        metadata={"description": f"One or more of {', '.join(LOOKUP_STATUSES)}"},
    )
    # Its length is the format's (indicators.MAX_LENGTH), checked by `parse` below.
    ioc = fields.String(
        metadata={
            "description": "Only lookups of this indicator (normalised as a lookup would be)",
            "format": INDICATOR_FORMAT,
        },
    )
    date_from = DateOrDateTime(metadata={"description": "Looked up from (ISO 8601, UTC unless given)"})
    date_to = DateOrDateTime(metadata={"description": "Looked up until, inclusive; a bare date includes that day"})
    sort_by = SortBy(
        SORT_KEYS,
        "created_at",
        metadata={
            "description": f"A key, or several with directions: score:desc,created_at:asc. Keys: "
            f"{', '.join(SORT_KEYS)}. Lookups without a score sort last either way."
        },
    )
    sort_order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(load_default=10, validate=validate.Range(min=1, max=MAX_PER_PAGE))

    @validates_schema
    def _check(self, data: dict, **kwargs: Any) -> None:
        check_history_args(data, SORT_KEYS)
        if data.get("ioc"):
            try:
                parse(data["ioc"])
            except InvalidIndicator as error:
                raise ValidationError(error.message, "ioc") from None

    @post_load
    def _to_query(self, data: dict, **kwargs: Any) -> LookupQuery:
        date_from, date_to = data.get("date_from"), data.get("date_to")
        return LookupQuery(
            types=split(data.get("type")),
            verdicts=split(data.get("verdict")),
            statuses=split(data.get("status")),
            ioc=parse(data["ioc"]).value if data.get("ioc") else None,
            date_from=date_from[0] if date_from else None,
            date_before=exclusive_end(date_to) if date_to else None,
            sort=parse_sort(data["sort_by"], SORT_KEYS, data["sort_order"]),
            page=data["page"],
            per_page=data["per_page"],
        )


class BulkJobArgsSchema(Schema):
    status = CommaList(
        ITEM_STATUSES,
        metadata={"description": f"Only results in one or more of {', '.join(ITEM_STATUSES)}"},
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_ITEMS_PER_PAGE))


class BulkListArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class BulkExportArgsSchema(Schema):
    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "json")))


# -- responses --------------------------------------------------------------------------------


class EvidenceSchema(Schema):
    engine = fields.String()
    category = fields.String(metadata={"description": "malicious or suspicious"})
    result = fields.String(allow_none=True, metadata={"description": "The engine's label"})


class ProviderSchema(Schema):
    provider = fields.String(metadata={"example": "virustotal"})
    status = fields.String(metadata={"description": ", ".join(PROVIDER_STATUSES)})
    latency_ms = fields.Integer(allow_none=True, metadata={"description": "Time spent getting this answer"})
    reputation = fields.Integer(allow_none=True, metadata={"description": "VirusTotal's community reputation"})
    malicious_count = fields.Integer(allow_none=True)
    suspicious_count = fields.Integer(allow_none=True)
    harmless_count = fields.Integer(allow_none=True)
    undetected_count = fields.Integer(allow_none=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), metadata={"description": "Engines flagging it (20 at most)"})
    context = fields.Dict(metadata={"description": "Type-specific attributes: ASN and country, registrar, file type"})
    last_analysis_date = fields.DateTime(allow_none=True, metadata={"description": "When VirusTotal last analysed it"})
    permalink = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    raw = fields.Dict(metadata={"description": "VirusTotal's object, with show_raw"})


class LookupSummarySchema(Schema):
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    score = fields.Integer(allow_none=True, metadata={"description": SCORE_DESCRIPTION})
    explanation = fields.String()


class TimingSchema(Schema):
    total_ms = fields.Integer(allow_none=True)


class LookupResultSchema(Schema):
    lookup_id = fields.UUID()
    status = fields.String(metadata={"description": "completed, or pending (answered 202) until a worker finishes"})
    ioc = fields.String()
    ioc_type = fields.String(metadata={"description": ", ".join(IOC_TYPES)})
    providers = fields.List(fields.Nested(ProviderSchema))
    summary = fields.Nested(LookupSummarySchema)
    timing = fields.Nested(TimingSchema)
    cached = fields.Boolean(metadata={"description": "True when no VirusTotal request was made"})
    source = fields.String(allow_none=True, metadata={"description": SOURCE_DESCRIPTION})
    report_age_seconds = fields.Integer(allow_none=True, metadata={"description": "Since VirusTotal gave the report"})
    fetched_at = fields.DateTime(allow_none=True, metadata={"description": "When VirusTotal gave the report"})
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "Why a failed lookup failed"})


class AuthorSchema(Schema):
    id = fields.UUID()
    username = fields.String()


class NoteOutSchema(Schema):
    id = fields.UUID()
    text = fields.String()
    author = fields.Nested(AuthorSchema, allow_none=True)
    created_at = fields.DateTime()


class IocRefSchema(Schema):
    id = fields.UUID(metadata={"description": "Stable per indicator: every lookup of it has the same id"})
    value = fields.String()
    type = fields.String()


class OwnerSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    role = fields.String()


class LookupDetailSchema(Schema):
    id = fields.UUID()
    ioc = fields.Nested(IocRefSchema)
    user = fields.Nested(OwnerSchema)
    status = fields.String()
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    score = fields.Integer(allow_none=True, metadata={"description": SCORE_DESCRIPTION})
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    explanation = fields.String()
    provider_results = fields.List(fields.Nested(ProviderSchema))
    notes = fields.List(fields.Nested(NoteOutSchema))
    cached = fields.Boolean()
    source = fields.String(allow_none=True, metadata={"description": SOURCE_DESCRIPTION})
    report_age_seconds = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)


class LookupRowSchema(Schema):
    id = fields.UUID()
    ioc = fields.String()
    ioc_type = fields.String()
    status = fields.String()
    verdict = fields.String()
    score = fields.Integer(allow_none=True)
    malicious_count = fields.Integer(allow_none=True)
    source = fields.String(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class LookupHistoryPageSchema(Schema):
    lookups = fields.List(fields.Nested(LookupRowSchema))
    pagination = fields.Nested(PaginationSchema)


class EndpointReportOutSchema(Schema):
    endpoint_type = fields.String()
    endpoint_value = fields.String(metadata={"description": "Normalised"})
    report = fields.Dict(allow_none=True, metadata={"description": "VirusTotal's object; null while pending"})
    cached = fields.Boolean(metadata={"description": "True when it came from the cache or our database"})
    lookup_id = fields.UUID()
    status = fields.String(metadata={"description": "completed, or pending (202) until a worker finishes"})


class InvalidLineSchema(Schema):
    line = fields.Integer()
    value = fields.String()
    reason = fields.String()


class BulkSubmittedSchema(Schema):
    job_id = fields.UUID()
    status = fields.String()
    total_iocs = fields.Integer(metadata={"description": "Unique valid indicators"})
    message = fields.String()
    invalid_count = fields.Integer()
    duplicate_count = fields.Integer(metadata={"description": "Lines repeating an indicator (after normalising)"})
    invalid_lines = fields.List(fields.Nested(InvalidLineSchema), metadata={"description": "The first 1000"})


class BulkItemSchema(Schema):
    line = fields.Integer(metadata={"description": "Where the indicator first appears in the upload"})
    ioc = fields.String()
    ioc_type = fields.String()
    status = fields.String(metadata={"description": ", ".join(ITEM_STATUSES)})
    verdict = fields.String(metadata={"description": VERDICT_DESCRIPTION})
    score = fields.Integer(allow_none=True, metadata={"description": SCORE_DESCRIPTION})
    explanation = fields.String(allow_none=True)
    malicious_count = fields.Integer(allow_none=True)
    suspicious_count = fields.Integer(allow_none=True)
    harmless_count = fields.Integer(allow_none=True)
    undetected_count = fields.Integer(allow_none=True)
    reputation = fields.Integer(allow_none=True)
    provider_status = fields.String(allow_none=True)
    source = fields.String(allow_none=True, metadata={"description": SOURCE_DESCRIPTION})
    cached = fields.Boolean()
    report_age_seconds = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class BulkCountsSchema(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"description": ", ".join(JOB_STATUSES)})
    total_iocs = fields.Integer()
    processed_iocs = fields.Integer(metadata={"description": "completed + failed"})
    completed_iocs = fields.Integer()
    failed_iocs = fields.Integer()
    pending_iocs = fields.Integer()
    cancelled_iocs = fields.Integer()


class BulkJobSchema(BulkCountsSchema):
    filename = fields.String(allow_none=True)
    invalid_count = fields.Integer()
    duplicate_count = fields.Integer()
    invalid_lines = fields.List(fields.Nested(InvalidLineSchema))
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(
        allow_none=True, metadata={"description": "Why a failed job failed, or what it retries after"}
    )


class BulkJobPageSchema(BulkJobSchema):
    results = fields.List(fields.Nested(BulkItemSchema))
    pagination = fields.Nested(PaginationSchema)


class BulkJobListSchema(Schema):
    jobs = fields.List(fields.Nested(BulkJobSchema))
    pagination = fields.Nested(PaginationSchema)

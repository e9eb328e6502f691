"""HTTP for indicator lookups (seed 002), seed 000's report endpoints and bulk jobs."""

from __future__ import annotations

import math

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from .. import events
from ..auth.access import current_user, login_required
from ..db_types import utcnow
from ..errors import NotFound, PayloadTooLarge, ProviderError, ValidationFailed
from ..extensions import db, upload_limit
from ..openapi_docs import multipart_file_body
from ..scans.results import exports
from . import bulk, presenters, services, tasks
from .schemas import (
    BulkExportArgsSchema,
    BulkJobArgsSchema,
    BulkJobListSchema,
    BulkJobPageSchema,
    BulkJobSchema,
    BulkListArgsSchema,
    BulkSubmittedSchema,
    CheckIocSchema,
    EndpointReportInSchema,
    EndpointReportOutSchema,
    LookupDetailSchema,
    LookupHistoryArgsSchema,
    LookupHistoryPageSchema,
    LookupResultSchema,
    NoteInSchema,
    NoteOutSchema,
    ShowRawArgsSchema,
    split,
)

lookups_blp = Blueprint(
    "lookups", __name__, url_prefix="/api", description="Indicator lookups: hashes, URLs, domains and IP addresses"
)
reports_blp = Blueprint(
    "virustotal_reports",
    __name__,
    description="Seed 000's cached VirusTotal reports (a thin adapter over the indicator lookups)",
)
bulk_blp = Blueprint("bulk", __name__, url_prefix="/api/bulk", description="Bulk indicator jobs")
blueprints = (lookups_blp, reports_blp, bulk_blp)

# Room for the multipart envelope around the largest accepted list.
ENVELOPE_BYTES = 64 * 1024
PENDING_DOC = "202: the lookup is pending (VirusTotal quota spent, or an analysis running); a worker finishes it"
DOWNLOADS = {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}


def _pagination(page: int, per_page: int, total: int) -> dict:
    return {"page": page, "per_page": per_page, "total_pages": math.ceil(total / per_page), "total_items": total}


def _lookup_answer(checked: services.Checked) -> tuple[int, dict[str, str]]:
    """Commit the lookup; a pending one goes to a worker. Returns its status code and headers."""
    db.session.commit()
    lookup = checked.lookup
    if not checked.pending:
        return 200, {}
    tasks.enqueue_lookup(lookup.id, checked.delay or 0.0)
    return 202, {"Location": f"/api/lookup/{lookup.id}"}


# -- lookups ----------------------------------------------------------------------------------


@lookups_blp.route("/check_ioc")
class CheckIoc(MethodView):
    decorators = [login_required]

    @lookups_blp.arguments(CheckIocSchema)
    @lookups_blp.response(200, LookupResultSchema)
    @lookups_blp.alt_response(202, schema=LookupResultSchema, description=PENDING_DOC)
    def post(self, args: dict):
        """Check an indicator: from the cache, our stored report, or VirusTotal"""
        checked = services.check(current_user(), args["ioc"], args["force_refresh"])
        status, headers = _lookup_answer(checked)
        raw = services.raw_report(checked.lookup) if args["show_raw"] else None
        return presenters.lookup_result(checked.lookup, raw), status, headers


@lookups_blp.route("/lookup/<id:lookup_id>")
class LookupById(MethodView):
    decorators = [login_required]

    @lookups_blp.arguments(ShowRawArgsSchema, location="query", unknown=RAISE)
    @lookups_blp.response(200, LookupDetailSchema)
    def get(self, args: dict, lookup_id: str):
        """A lookup with its provider results and notes (its owner or an admin)"""
        lookup = services.get_lookup(current_user(), lookup_id)
        return presenters.lookup_detail(lookup, services.raw_report(lookup) if args["show_raw"] else None)


@lookups_blp.route("/lookup/<id:lookup_id>/notes")
class LookupNotes(MethodView):
    decorators = [login_required]

    @lookups_blp.arguments(NoteInSchema)
    @lookups_blp.response(201, NoteOutSchema)
    def post(self, args: dict, lookup_id: str):
        """Add a note to a lookup"""
        note = services.add_note(current_user(), lookup_id, args["text"])
        db.session.commit()
        return presenters.note_view(note)


@lookups_blp.route("/lookups")
class LookupHistory(MethodView):
    decorators = [login_required]

    @lookups_blp.arguments(LookupHistoryArgsSchema, location="query", unknown=RAISE, as_kwargs=False)
    @lookups_blp.response(200, LookupHistoryPageSchema)
    def get(self, query: services.LookupQuery):
        """Your lookups, filtered (type, verdict, status, indicator, dates), sorted and paged"""
        page = services.history_page(current_user().id, query)
        return {"lookups": [presenters.history_row(row) for row in page["lookups"]], "pagination": page["pagination"]}


# -- seed 000 ---------------------------------------------------------------------------------


def _endpoint_report(args: dict, refresh: bool):
    vt_type = services.endpoint_type(args["endpoint_type"])
    checked = services.check(current_user(), args["endpoint_value"], force_refresh=refresh, vt_type=vt_type)
    status, headers = _lookup_answer(checked)
    lookup = checked.lookup
    if lookup.status == "failed":
        raise ProviderError(lookup.error or "VirusTotal could not answer", details={"lookup_id": str(lookup.id)})
    if lookup.provider_status == "not_found":
        raise NotFound(f"VirusTotal has no report for this {vt_type}", details={"lookup_id": str(lookup.id)})
    body = {
        "endpoint_type": args["endpoint_type"].strip().lower(),
        "endpoint_value": lookup.ioc,
        "report": services.raw_report(lookup),
        "cached": lookup.source in ("cache", "database"),
        "lookup_id": lookup.id,
        "status": lookup.status,
    }
    return body, status, headers


@reports_blp.route("/get_virustotal_report/")
class GetVirusTotalReport(MethodView):
    decorators = [login_required]

    @reports_blp.arguments(EndpointReportInSchema)
    @reports_blp.response(200, EndpointReportOutSchema)
    @reports_blp.alt_response(202, schema=EndpointReportOutSchema, description=PENDING_DOC)
    def post(self, args: dict):
        """VirusTotal's report for a domain, IP, file hash or URL: cache, then database, then VirusTotal"""
        return _endpoint_report(args, refresh=False)


@reports_blp.route("/refresh_virustotal_report/")
class RefreshVirusTotalReport(MethodView):
    decorators = [login_required]

    @reports_blp.arguments(EndpointReportInSchema)
    @reports_blp.response(200, EndpointReportOutSchema)
    @reports_blp.alt_response(202, schema=EndpointReportOutSchema, description=PENDING_DOC)
    def post(self, args: dict):
        """Fetch the report from VirusTotal again and update the cache and database"""
        return _endpoint_report(args, refresh=True)


# -- bulk jobs --------------------------------------------------------------------------------

BULK_BODY = multipart_file_body(
    "A CSV (indicators in its `ioc` column, or the first column without a header row) "
    "or text with one indicator per line"
)


def _uploaded_list() -> tuple[bytes, str | None, str | None]:
    limit = current_app.config["BULK_MAX_BYTES"]
    too_large = PayloadTooLarge(f"The list is larger than the {limit} bytes allowed", details={"limit": limit})
    if request.content_length is not None and request.content_length > limit + ENVELOPE_BYTES:
        raise too_large
    request.max_content_length = limit + ENVELOPE_BYTES
    upload = request.files.get("file")
    if upload is not None:
        content = upload.stream.read(limit + 1)
        name, mimetype = upload.filename, upload.mimetype
    elif "file" in request.form:  # `curl -F "file=<iocs.txt"` sends the list as a plain field
        content, name, mimetype = request.form["file"].encode(), None, None
    else:
        raise ValidationFailed('Expected a multipart/form-data upload with the list in the field "file"')
    if len(content) > limit:
        raise too_large
    return content, name, mimetype


@bulk_blp.route("")
class BulkJobs(MethodView):
    decorators = [upload_limit, login_required]

    @bulk_blp.doc(requestBody=BULK_BODY)
    @bulk_blp.response(202, BulkSubmittedSchema)
    def post(self):
        """Submit a list of indicators (CSV or text) to check in the background"""
        content, name, mimetype = _uploaded_list()
        job = bulk.create_job(current_user(), content, name, mimetype)
        db.session.commit()
        tasks.enqueue_bulk(job.id)
        return (
            {
                "job_id": job.id,
                "status": job.status,
                "total_iocs": job.total_iocs,
                "message": "Bulk job submitted successfully",
                "invalid_count": job.invalid_count,
                "duplicate_count": job.duplicate_count,
                "invalid_lines": job.invalid_lines,
            },
            202,
            {"Location": f"/api/bulk/{job.id}"},
        )

    @bulk_blp.arguments(BulkListArgsSchema, location="query", unknown=RAISE)
    @bulk_blp.response(200, BulkJobListSchema)
    def get(self, args: dict):
        """Your bulk jobs, newest first"""
        jobs, total = bulk.list_jobs(current_user(), args["page"], args["per_page"])
        return {
            "jobs": [presenters.job_view(job, bulk.progress(job.id)) for job in jobs],
            "pagination": _pagination(args["page"], args["per_page"], total),
        }


@bulk_blp.route("/<id:job_id>")
class BulkJobById(MethodView):
    decorators = [login_required]

    @bulk_blp.arguments(BulkJobArgsSchema, location="query", unknown=RAISE)
    @bulk_blp.response(200, BulkJobPageSchema)
    def get(self, args: dict, job_id: str):
        """A bulk job's progress and a page of its results, in upload order"""
        job = bulk.get_job(current_user(), job_id)
        items, total = bulk.items_page(job.id, split(args.get("status")), args["page"], args["per_page"])
        return {
            **presenters.job_view(job, bulk.progress(job.id)),
            "results": [presenters.item_view(item) for item in items],
            "pagination": _pagination(args["page"], args["per_page"], total),
        }

    @bulk_blp.response(200, BulkJobSchema)
    def delete(self, job_id: str):
        """Cancel a bulk job: answers given so far are kept, the rest are not asked"""
        job = bulk.cancel(current_user(), job_id)
        db.session.commit()
        events.publish("bulk", job.id)
        return presenters.job_view(job, bulk.progress(job.id))


@bulk_blp.route("/<id:job_id>/export")
class BulkJobExport(MethodView):
    decorators = [login_required]

    @bulk_blp.arguments(BulkExportArgsSchema, location="query", unknown=RAISE)
    @bulk_blp.doc(responses={"200": {"description": "Every result, one per indicator", "content": DOWNLOADS}})
    def get(self, args: dict, job_id: str):
        """Download a bulk job's results as CSV or JSON"""
        job = bulk.get_job(current_user(), job_id)
        fmt, summary = args["format"], presenters.job_view(job, bulk.progress(job.id))
        items = bulk.all_items(job.id)
        body = presenters.export_csv(items) if fmt == "csv" else presenters.export_json(summary, items)
        name = f"bulk-{job.id}-{utcnow():%Y%m%dT%H%M%SZ}.{fmt}"
        return exports.download(body, fmt, name)

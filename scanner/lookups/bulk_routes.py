"""HTTP for bulk indicator jobs: a list uploaded at once, answered in the background."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from .. import audit, events
from ..auth.access import current_user, login_required
from ..db_types import utcnow
from ..errors import PayloadTooLarge, ValidationFailed
from ..extensions import db
from ..rate_limits import upload_limit
from ..request_args import links, multipart_file_body, pagination, split
from ..scans.results import exports
from . import bulk, presenters, tasks
from .schemas import (
    BulkExportArgsSchema,
    BulkJobArgsSchema,
    BulkJobListSchema,
    BulkJobPageSchema,
    BulkJobSchema,
    BulkListArgsSchema,
    BulkSubmittedSchema,
)

blp = Blueprint("bulk", __name__, url_prefix="/api/bulk", description="Bulk indicator jobs")

# Room for the multipart envelope around the largest accepted list.
ENVELOPE_BYTES = 64 * 1024
DOWNLOADS = {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}


JOB_OPERATIONS = (("GET", ""), ("GET", "/export"), ("DELETE", ""))
BULK_BODY = multipart_file_body(
    "A CSV (indicators in its `ioc` column, or the first column without a header row) or UTF-8 text with one "
    "indicator per line, as a file or a plain field; at least one line must be an indicator",
    # Not a JSON Schema format: lines of the `indicator` format (see POST /api/check_ioc).
    file_format="indicator-list",
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


@blp.route("")
class BulkJobs(MethodView):
    decorators = [upload_limit, login_required]

    @blp.doc(requestBody=BULK_BODY)
    # Not to the live stream, which waits for a worker.
    @blp.doc(**links(202, "job_id", "/job_id", *(f"{op} /api/bulk/{{job_id}}{end}" for op, end in JOB_OPERATIONS)))
    @blp.response(202, BulkSubmittedSchema)
    def post(self):
        """Submit a list of indicators (CSV or text) to check in the background"""
        content, name, mimetype = _uploaded_list()
        job = bulk.create_job(current_user(), content, name, mimetype)
        details = {"indicators": job.total_iocs, "invalid": job.invalid_count}
        audit.record("bulk.create", actor=current_user(), target_type="bulk_job", target_id=job.id, details=details)
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

    @blp.arguments(BulkListArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, BulkJobListSchema)
    def get(self, args: dict):
        """Your bulk jobs, newest first"""
        jobs, total = bulk.list_jobs(current_user(), args["page"], args["per_page"])
        return {
            "jobs": [presenters.job_view(job, bulk.progress(job.id)) for job in jobs],
            "pagination": pagination(args["page"], args["per_page"], total),
        }


@blp.route("/<id:job_id>")
class BulkJobById(MethodView):
    decorators = [login_required]

    @blp.arguments(BulkJobArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, BulkJobPageSchema)
    def get(self, args: dict, job_id: str):
        """A bulk job's progress and a page of its results, in upload order"""
        job = bulk.get_job(current_user(), job_id)
        items, total = bulk.items_page(job.id, split(args.get("status")), args["page"], args["per_page"])
        return {
            **presenters.job_view(job, bulk.progress(job.id)),
            "results": [presenters.item_view(item) for item in items],
            "pagination": pagination(args["page"], args["per_page"], total),
        }

    @blp.response(200, BulkJobSchema)
    def delete(self, job_id: str):
        """Cancel a bulk job: answers given so far are kept, the rest are not asked"""
        job = bulk.cancel(current_user(), job_id)
        audit.record("bulk.cancel", actor=current_user(), target_type="bulk_job", target_id=job.id)
        db.session.commit()
        events.publish("bulk", job.id)
        return presenters.job_view(job, bulk.progress(job.id))


@blp.route("/<id:job_id>/export")
class BulkJobExport(MethodView):
    decorators = [login_required]

    @blp.arguments(BulkExportArgsSchema, location="query", unknown=RAISE)
    @blp.doc(responses={"200": {"description": "Every result, one per indicator", "content": DOWNLOADS}})
    def get(self, args: dict, job_id: str):
        """Download a bulk job's results as CSV or JSON"""
        job = bulk.get_job(current_user(), job_id)
        fmt, summary = args["format"], presenters.job_view(job, bulk.progress(job.id))
        items = bulk.all_items(job.id)
        body = presenters.export_csv(items) if fmt == "csv" else presenters.export_json(summary, items)
        name = f"bulk-{job.id}-{utcnow():%Y%m%dT%H%M%SZ}.{fmt}"
        # Under the one action every export is recorded as, so a filter on it finds them all.
        details = {"format": fmt, "rows": summary["total_iocs"]}
        audit.record("results.export", actor=current_user(), target_type="bulk_job", target_id=job.id, details=details)
        db.session.commit()
        return exports.download(body, fmt, name)

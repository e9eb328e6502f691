from __future__ import annotations

import json

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE

from ... import audit
from ...auth.access import current_user, login_required, signed_in_user
from ...db_reads import read_only
from ...db_types import utcnow
from ...extensions import db
from ...json_answers import sent
from . import exports, services
from .query import HistoryQuery
from .schemas import (
    FileScanSchema,
    ScanExportArgsSchema,
    ScanHistoryArgsSchema,
    ScanHistoryExportArgsSchema,
    ScanHistoryPageSchema,
    ScanResultsSchema,
    UserScansArgsSchema,
    UserScanSchema,
)

blp = Blueprint(
    "results", __name__, url_prefix="/api/scan", description="Scan results, history and reports (JSON, CSV, PDF)"
)

DOWNLOAD_RESPONSES = {
    "application/json": {"schema": {"type": "object"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
}


def _exported(scan_id, fmt: str, rows: int | None = None) -> None:
    target = {"target_type": "scan", "target_id": scan_id} if scan_id else {"target_type": "history"}
    audit.record("results.export", actor=current_user(), details={"format": fmt, "rows": rows}, **target)
    db.session.commit()


@blp.route("/results")
class ScanHistory(MethodView):
    decorators = [read_only, login_required]

    @blp.arguments(ScanHistoryArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, ScanHistoryPageSchema)
    def get(self, query: HistoryQuery):
        """Your scans, filtered, sorted and paged"""
        # The schema's JSON, made once per change of the user's scans (services.history_answer).
        return sent(services.history_answer(signed_in_user().id, query))


@blp.route("/results/export")
class ScanHistoryExport(MethodView):
    decorators = [login_required]

    @blp.arguments(ScanHistoryExportArgsSchema, location="query", unknown=RAISE)
    @blp.doc(responses={"200": {"description": "CSV (one row per scan) or JSON", "content": DOWNLOAD_RESPONSES}})
    def get(self, args: dict):
        """Download your filtered history as CSV or JSON (at most RESULTS_EXPORT_MAX_ROWS scans)"""
        query, fmt = args["query"], args["format"]
        limit = current_app.config["RESULTS_EXPORT_MAX_ROWS"]
        export = services.history_export(current_user().id, query, limit)
        now = utcnow()
        headers = {
            "X-Total-Count": str(export.total),
            "X-Export-Limit": str(limit),
            "X-Export-Truncated": "true" if export.truncated else "false",
        }
        if fmt == "csv":
            body = exports.history_csv(export.rows)
        else:
            meta = {
                "generated_at": now.isoformat(),
                "total_items": export.total,
                "exported_items": min(export.total, limit),
                "truncated": export.truncated,
            }
            body = exports.history_json(export.rows, meta)
        name = f"scan-history-{now:%Y%m%dT%H%M%SZ}.{fmt}"
        _exported(None, fmt, export.total)
        return exports.download(body, fmt, name, headers=headers)


@blp.route("/<id:scan_id>/results")
class ScanResults(MethodView):
    decorators = [login_required]

    @blp.response(200, ScanResultsSchema)
    def get(self, scan_id: str):
        """A scan's full report: every engine's verdict, the summary, the file and its hashes"""
        return services.scan_report_for(current_user(), scan_id)


@blp.route("/<id:scan_id>/export")
class ScanExport(MethodView):
    decorators = [login_required]

    @blp.arguments(ScanExportArgsSchema, location="query", unknown=RAISE)
    @blp.doc(
        responses={
            "200": {"description": "The report as a file download", "content": DOWNLOAD_RESPONSES},
            "409": {"description": "The scan is not finished yet (SCAN_NOT_FINISHED): nothing to hand on"},
        }
    )
    def get(self, args: dict, scan_id: str):
        """Download a scan's report as JSON, CSV (one row per engine) or PDF"""
        report = services.finished_report_for(current_user(), scan_id)
        fmt, now = args["format"], utcnow()
        if fmt == "json":
            body = exports.report_json(report, now)
        elif fmt == "csv":
            body = exports.report_csv(report)
        else:
            body = exports.report_pdf(report, now)
        _exported(report["scan_id"], fmt)
        fallback, preferred = exports.download_name(report["filename"], f"scan-{report['scan_id']}", fmt)
        return exports.download(body, fmt, fallback, preferred)


@blp.route("/file/<id:file_id>")
class FileScans(MethodView):
    decorators = [login_required]

    @blp.response(200, FileScanSchema(many=True))
    def get(self, file_id: str):
        """Every scan of one of your files, oldest first"""
        return services.file_scans(current_user(), file_id)


@blp.route("/user/<id:user_id>")
class UserScans(MethodView):
    decorators = [login_required]

    @blp.arguments(UserScansArgsSchema, location="query", unknown=RAISE)
    @blp.response(200, UserScanSchema(many=True))
    @blp.doc(
        description="Your own scans, or any user's for an admin. Same filters and sorting as GET "
        "/api/scan/results; the paging figures are in the X-Pagination header."
    )
    def get(self, query: HistoryQuery, user_id: str):
        """A user's scans (admins: any user's)"""
        page = services.user_scans(current_user(), user_id, query)
        headers = {
            "X-Pagination": json.dumps(page["pagination"]),
            "X-Total-Count": str(page["pagination"]["total_items"]),
        }
        return page["scans"], 200, headers

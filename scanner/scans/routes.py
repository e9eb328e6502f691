from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from .. import audit
from ..auth.access import current_user, login_required, signed_in_user
from ..db_reads import read_only
from ..extensions import db
from ..files.routes import SCAN_OPERATIONS
from ..json_answers import sent
from ..request_args import links
from . import services, uploads  # noqa: F401  uploads: the scan that follows every upload
from .schemas import ScanRequestSchema, ScanStartedSchema, ScanStatusSchema
from .tasks import enqueue_scan

blp = Blueprint("scans", __name__, url_prefix="/api/scan", description="Start scans and follow them")


def _start(file_id: str, args: dict, kind: str, message: str):
    user = current_user()
    file = services.get_file_for(user, file_id)
    scan = services.start_scan(user, file, args.get("api_key_id"), kind, args.get("never_upload"))
    audit.record(f"scan.{'start' if kind == 'scan' else kind}", actor=user, target_type="scan", target_id=scan.id)
    db.session.commit()
    enqueue_scan(scan.id)
    return {"message": message, "scan_id": scan.id, "status": scan.status}


@blp.route("/file/<id:file_id>")
class ScanFile(MethodView):
    decorators = [login_required]

    @blp.arguments(ScanRequestSchema, required=False)
    @blp.doc(**links(202, "scan_id", "/scan_id", *SCAN_OPERATIONS))
    @blp.response(202, ScanStartedSchema)
    def post(self, args, file_id):
        """Scan a file with VirusTotal (hash lookup first, upload only when needed and allowed)"""
        return _start(file_id, args or {}, "scan", "Scan initiated successfully")


@blp.route("/file/<id:file_id>/rescan")
class RescanFile(MethodView):
    decorators = [login_required]

    @blp.arguments(ScanRequestSchema, required=False)
    @blp.doc(**links(202, "scan_id", "/scan_id", *SCAN_OPERATIONS))
    @blp.response(202, ScanStartedSchema)
    def post(self, args, file_id):
        """Ask VirusTotal to analyse a file again"""
        return _start(file_id, args or {}, "rescan", "Rescan initiated successfully")


@blp.route("/<id:scan_id>/status")
class ScanStatus(MethodView):
    decorators = [read_only, login_required]

    @blp.response(200, ScanStatusSchema)
    def get(self, scan_id):
        """Where a scan is: status, stage, detection ratio"""
        # The schema's JSON, made once per change of the scan (services.scan_status_for).
        return sent(services.scan_status_for(signed_in_user(), scan_id))

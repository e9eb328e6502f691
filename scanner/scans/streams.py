"""GET /api/stream/scans/{id}: a scan followed live, as Server-Sent Events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from ..auth.access import current_token, current_user, login_required
from ..extensions import db
from ..streams import slots, sse
from .models import Scan
from .results.report import FINISHED, scan_verdict
from .services import get_scan_for

blp = Blueprint("scan_streams", __name__, url_prefix="/api/stream/scans", description="Live progress of a scan")


def scan_snapshot(scan_id: uuid.UUID) -> Callable[[], sse.Snapshot]:
    def read() -> sse.Snapshot:
        scan = db.session.get(Scan, scan_id, populate_existing=True)
        if scan is None:  # deleted with its file
            return None, None
        data = {
            "scan_id": scan.id,
            "status": scan.status,
            "stage": scan.stage,
            "detection_ratio": scan.detection_ratio,
            "scan_date": scan.scan_date,
            "verdict": scan_verdict(scan),
            "error": scan.error,
        }
        return (scan.status, scan.stage, scan.detection_ratio, scan.error), data

    return read


def scan_is_final(data: dict[str, Any]) -> bool:
    return data["status"] in FINISHED


@blp.route("/<id:scan_id>")
class StreamScan(MethodView):
    decorators = [login_required]

    @blp.doc(responses=sse.EVENT_STREAM_DOC)
    def get(self, scan_id: str):
        """Follow a scan: `status` at each change, then `complete`"""
        user = current_user()
        scan = get_scan_for(user, scan_id)
        slot = slots.acquire(user.id)
        snapshot = scan_snapshot(scan.id)
        body = sse.follow("scan", scan.id, snapshot, scan_is_final, "status", current_token(), slot)
        return sse.response(body, slot)

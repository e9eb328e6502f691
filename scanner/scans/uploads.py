"""Every uploaded file starts a scan by itself, when its owner has a VirusTotal key."""

from __future__ import annotations

import uuid

from .. import audit
from ..auth.models import User
from ..errors import NoActiveApiKey
from ..files.models import File
from ..files.signals import UploadAnswer, file_uploaded
from .services import start_scan
from .tasks import enqueue_scan


@file_uploaded.connect
def scan_uploaded_file(file: File, user: User, api_key_id: uuid.UUID | None) -> UploadAnswer:
    try:
        scan = start_scan(user, file, api_key_id)
    except NoActiveApiKey:
        message = f"File stored; add a VirusTotal API key, then POST /api/scan/file/{file.id}"
        return UploadAnswer({"scan_id": None, "status": "not_started", "message": message})
    # In the upload's transaction: the scan is recorded if and only if the upload is.
    audit.record("scan.start", actor=user, target_type="scan", target_id=scan.id, details={"started_by": "upload"})
    block = {"scan_id": scan.id, "status": scan.status, "message": "Scan initiated automatically"}
    return UploadAnswer(block, after_commit=lambda: enqueue_scan(scan.id))

from marshmallow import Schema, fields

from ..request_parser import StrictBoolean


class ScanRequestSchema(Schema):
    api_key_id = fields.UUID(load_default=None, metadata={"description": "Key to spend; default: any active key"})
    never_upload = StrictBoolean(
        load_default=None,
        metadata={"description": "Never send the file itself to VirusTotal (default: the file's setting)"},
    )


class ScanStartedSchema(Schema):
    message = fields.String()
    scan_id = fields.UUID()
    status = fields.String()


class ScanStatusSchema(Schema):
    scan_id = fields.UUID(attribute="id")
    file_id = fields.UUID()
    kind = fields.String()
    status = fields.String(metadata={"description": "pending, scanning, completed, failed or not_found"})
    stage = fields.String(
        metadata={
            "description": "queued, looking_up, uploading, waiting_for_analysis, waiting_for_flight, "
            "waiting_for_quota, done or failed"
        }
    )
    detection_ratio = fields.String(
        allow_none=True, metadata={"description": "malicious / engines that gave a verdict (excludes timeouts)"}
    )
    scan_date = fields.DateTime(allow_none=True)
    attempts = fields.Integer()
    next_check_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)

from marshmallow import Schema, fields, validate

from ..db_types import SQL_INT_MAX


class FileSchema(Schema):
    id = fields.UUID()
    filename = fields.String()
    file_size = fields.Integer()
    mime_type = fields.String(metadata={"description": "Detected from the content, not taken from the client"})
    hash_md5 = fields.String(attribute="md5")
    hash_sha1 = fields.String(attribute="sha1")
    hash_sha256 = fields.String(attribute="sha256")
    never_upload = fields.Boolean()
    upload_date = fields.DateTime()


class UploadScanSchema(Schema):
    scan_id = fields.UUID(allow_none=True)
    status = fields.String()
    message = fields.String()


class UploadedFileSchema(FileSchema):
    scan = fields.Nested(UploadScanSchema)


class FileListArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=SQL_INT_MAX))
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class MessageSchema(Schema):
    message = fields.String()

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from .. import audit
from ..auth.access import current_user, login_required
from ..extensions import db
from ..rate_limits import upload_limit
from ..request_args import links, multipart_file_body, parse_uuid
from . import services
from .body import body_readinto
from .schemas import FileListArgsSchema, FileSchema, MessageSchema, UploadedFileSchema
from .signals import announce_deletion, announce_upload
from .storage import blob_store
from .upload import receive_upload

blp = Blueprint("files", __name__, url_prefix="/api/files", description="Upload and manage files")

UPLOAD_BODY = multipart_file_body(
    never_upload={
        "type": "boolean",
        "description": "Look the hash up only; never send the file itself to VirusTotal",
    },
    api_key_id={"anyOf": [{"type": "string", "format": "uuid"}, {"type": "string", "maxLength": 0}]},
)


# Where the ids an upload answers with lead (live streams aside: they wait for a worker).
FILE_OPERATIONS = (
    "GET /api/files/{file_id}",
    "DELETE /api/files/{file_id}",
    "POST /api/scan/file/{file_id}",
    "GET /api/scan/file/{file_id}",
    "POST /api/scan/file/{file_id}/rescan",
)
SCAN_OPERATIONS = tuple(f"GET /api/scan/{{scan_id}}/{what}" for what in ("status", "results", "export"))


@blp.route("/upload")
class Upload(MethodView):
    decorators = [upload_limit, login_required]

    @blp.doc(requestBody=UPLOAD_BODY)
    @blp.doc(**links(201, "file_id", "/id", *FILE_OPERATIONS))
    @blp.doc(**links(201, "scan_id", "/scan/scan_id", *SCAN_OPERATIONS))
    @blp.response(201, UploadedFileSchema)
    def post(self):
        """Upload a file (streamed and hashed on the way in); a scan starts automatically"""
        user = current_user()
        received = receive_upload(
            body_readinto(request), request.content_type, blob_store(), current_app.config["MAX_UPLOAD_BYTES"]
        )
        try:
            never_upload = services.form_flag(received.fields, "never_upload")
            key_field = received.fields.get("api_key_id", "").strip()
            api_key_id = parse_uuid(key_field, "API key ID") if key_field else None
        except Exception:
            blob_store().discard(received.temp_path)
            raise
        file = services.store_file(user, received, never_upload)
        try:
            answer = announce_upload(file, user, api_key_id)
        except Exception:
            key = file.blob_key
            db.session.rollback()
            services.remove_blob(key)
            raise
        audit.record(
            "file.upload",
            actor=user,
            target_type="file",
            target_id=file.id,
            details={"size": file.file_size, "never_upload": never_upload, "scan_id": answer.scan["scan_id"]},
        )
        db.session.commit()
        answer.after_commit()
        file.scan = answer.scan  # not a column: rides along for UploadedFileSchema, which dumps it once
        return file


@blp.route("/")
class Files(MethodView):
    decorators = [login_required]

    @blp.arguments(FileListArgsSchema, location="query")
    @blp.response(200, FileSchema(many=True))
    def get(self, args):
        """List your files, newest first (X-Total-Count has the total)"""
        files, total = services.list_files(current_user(), args["page"], args["per_page"])
        return files, 200, {"X-Total-Count": str(total)}


@blp.route('/<id("upload"):file_id>')
class FileById(MethodView):
    decorators = [login_required]

    @blp.response(200, FileSchema)
    def get(self, file_id):
        """One file's details and hashes"""
        return services.get_file(current_user(), file_id)

    @blp.response(200, MessageSchema)
    def delete(self, file_id):
        """Delete a file, its scans, and its stored bytes when no one else uploaded them"""
        file = services.get_own_file(current_user(), file_id)
        audit.record("file.delete", actor=current_user(), target_type="file", target_id=file.id)
        deleted = announce_deletion(file)
        key = services.delete_file(file)
        db.session.commit()
        deleted()
        services.remove_blob(key)
        return {"message": "File deleted successfully"}

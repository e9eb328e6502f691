"""Files: receive, list, read, delete. Blobs are shared by sha256 between users and removed
with the last File that points at them."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from ..auth.access import own_or_404, owned_or_404
from ..auth.models import User
from ..errors import ValidationFailed
from ..extensions import db
from ..request_args import page_of, parse_uuid
from .models import File
from .storage import blob_store
from .upload import ReceivedFile

log = logging.getLogger(__name__)
# What the upload body documents for a boolean part; "1", "yes" or "off" are refused, not guessed.
TRUE, FALSE = ("true",), ("false",)


def form_flag(fields: dict[str, str], name: str) -> bool | None:
    if name not in fields:
        return None
    value = fields[name].strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValidationFailed(f"Form field '{name}' must be true or false")


def store_file(user: User, received: ReceivedFile, never_upload: bool | None) -> File:
    store = blob_store()
    key = store.commit(received.temp_path, received.sha256)
    file = File(
        user_id=user.id,
        filename=received.filename,
        file_size=received.size,
        mime_type=received.mime_type,
        md5=received.md5,
        sha1=received.sha1,
        sha256=received.sha256,
        blob_key=key,
        never_upload=user.never_upload if never_upload is None else never_upload,
    )
    db.session.add(file)
    db.session.flush()
    return file


def list_files(user: User, page: int, per_page: int) -> tuple[list[File], int]:
    query = select(File).where(File.user_id == user.id)
    return page_of(query.order_by(File.upload_date.desc(), File.id), page, per_page)


def get_file(user: User, file_id: str) -> File:
    return owned_or_404(db.session.get(File, parse_uuid(file_id, "file ID")), user, "File not found")


def get_own_file(user: User, file_id: str) -> File:
    """A file the user may delete: their own only, admins included."""
    return own_or_404(db.session.get(File, parse_uuid(file_id, "file ID")), user, "File not found")


def delete_file(file: File) -> str | None:
    """Delete the row (its scans go with it); returns the blob key if no other File uses it, for
    the caller to remove after the commit."""
    key, sha256 = file.blob_key, file.sha256
    db.session.delete(file)
    db.session.flush()
    others = db.session.scalar(select(func.count()).select_from(File).where(File.sha256 == sha256))
    return None if others else key


def remove_blob(key: str | None) -> None:
    if key is None:
        return
    # Re-check after the commit: an upload of the same bytes may have landed meanwhile.
    if db.session.scalar(select(func.count()).select_from(File).where(File.blob_key == key)):
        return
    try:
        blob_store().delete(key)
    except OSError:
        log.warning("could not remove blob %s", key, exc_info=True)

"""Starting scans and reading their status."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select

from .. import logs
from ..api_keys import selection
from ..auth.models import User
from ..db_types import utcnow
from ..event_memory import Memory
from ..events import publish
from ..extensions import db
from ..files.models import File
from ..files.signals import file_deleting
from ..json_answers import made
from ..request_args import parse_uuid
from .models import Scan
from .schemas import ScanStatusSchema


def get_file_for(user: User, file_id: str) -> File:
    """A file the user may scan: their own (an admin reads any file but scans only their own)."""
    from ..auth.access import own_or_404

    return own_or_404(db.session.get(File, parse_uuid(file_id, "file ID")), user, "File not found")


def get_scan_for(user: User, scan_id: str) -> Scan:
    from ..auth.access import owned_or_404

    return owned_or_404(db.session.get(Scan, parse_uuid(scan_id, "scan ID")), user, "Scan not found")


# A scan's status is what clients ask most often (they poll it): its few columns are read through
# SQLAlchemy Core, and its JSON is made once per change of the scan (_STATUSES). Loading the whole
# entity into the session (31 columns, each described by the driver, then the identity map) cost
# the web process twice as much as the rest of the read.
_SCANS = Scan.__table__.c
_STATUS_SCHEMA = ScanStatusSchema()
_STATUS = select(
    _SCANS.user_id,
    *(_SCANS[field.attribute or name] for name, field in _STATUS_SCHEMA.fields.items()),
).where(_SCANS.id == bindparam("id"))


_STATUSES = Memory("scan")  # kept while the scan's events say it has not changed


class _Status(NamedTuple):
    user_id: uuid.UUID  # whose scan it is
    body: str  # the answer's JSON


def scan_status_for(user: User, scan_id: str) -> str:
    """ScanStatusSchema's JSON of a scan the user may read."""
    from ..auth.access import owned_or_404

    scan_uuid = parse_uuid(scan_id, "scan ID")
    ident = str(scan_uuid)
    found = _STATUSES.get(ident)
    if found is None:
        began = _STATUSES.reading()
        row = db.session.execute(_STATUS, {"id": scan_uuid}).first()
        if row is not None:
            found = _Status(row.user_id, made(_STATUS_SCHEMA, row._mapping))
            _STATUSES.keep(ident, found, began)
    return owned_or_404(found, user, "Scan not found").body


@file_deleting.connect
def _deleted_with_file(file: File, **_: Any):
    """The file's scans go with it: after the commit, this process forgets their statuses at once
    and the others (and the streams following them) hear that they changed."""
    scan_ids = db.session.scalars(select(Scan.id).where(Scan.file_id == file.id)).all()

    def announce() -> None:
        for scan_id in scan_ids:
            _STATUSES.drop(str(scan_id))
            publish("scan", scan_id)

    return announce


def start_scan(
    user: User, file: File, api_key_id: uuid.UUID | None = None, kind: str = "scan", never_upload: bool | None = None
) -> Scan:
    """A new scan row, due at once. The key is checked now, so a request that could never run
    is answered 400/404 instead of failing later in a worker."""
    selection.pick_key(user, api_key_id)
    scan = Scan(
        user_id=user.id,
        file_id=file.id,
        api_key_id=api_key_id,
        kind=kind,
        status="scanning",
        stage="queued",
        never_upload=file.never_upload if never_upload is None else never_upload,
        next_check_at=utcnow(),
        request_id=logs.context().get("request_id"),
    )
    db.session.add(scan)
    db.session.flush()
    return scan

"""What the files feature announces, so that it need not know the features that react to a file."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blinker import Namespace

from ..auth.models import User
from .models import File

_signals = Namespace()

file_uploaded = _signals.signal("file-uploaded")
"""Sent by POST /api/files/upload with the new File (flushed, not yet committed) as the sender and
the keywords `user` and `api_key_id`. The one receiver, the scans feature, returns an `UploadAnswer`;
an exception it raises undoes the upload."""


file_deleting = _signals.signal("file-deleting")
"""Sent by DELETE /api/files/{id} with the File about to be deleted (its scans go with it) as the
sender. A receiver may return a callable, called once the deletion is committed."""


@dataclass
class UploadAnswer:
    scan: dict[str, Any]  # the `scan` block of the upload's answer
    after_commit: Callable[[], None] = field(default=lambda: None)


def announce_upload(file: File, user: User, api_key_id: uuid.UUID | None) -> UploadAnswer:
    replies = [reply for _, reply in file_uploaded.send(file, user=user, api_key_id=api_key_id)]
    if len(replies) != 1:
        raise RuntimeError(f"an upload needs exactly one receiver of file_uploaded, found {len(replies)}")
    return replies[0]


def announce_deletion(file: File) -> Callable[[], None]:
    """Tell the features that keep something of the file's scans; returns what to call after the commit."""
    later = [reply for _, reply in file_deleting.send(file) if reply is not None]

    def after_commit() -> None:
        for each in later:
            each()

    return after_commit

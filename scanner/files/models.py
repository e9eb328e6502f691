from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, new_uuid, utcnow
from ..extensions import db


class File(db.Model):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_user_upload", "user_id", "upload_date"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))  # as the user gave it, for display only
    file_size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(127))
    md5: Mapped[str] = mapped_column(String(32), index=True)
    sha1: Mapped[str] = mapped_column(String(40), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    blob_key: Mapped[str] = mapped_column(String(255))  # where the blob store keeps the bytes
    never_upload: Mapped[bool] = mapped_column(default=False)
    upload_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

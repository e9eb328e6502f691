from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, new_uuid, utcnow
from ..extensions import db


class ApiKey(db.Model):
    __tablename__ = "api_keys"
    # One user cannot store the same VirusTotal key twice; two users may share one.
    __table_args__ = (UniqueConstraint("user_id", "fingerprint", name="uq_api_keys_user_id_fingerprint"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # MultiFernet token; never the key in clear
    last4: Mapped[str] = mapped_column(String(4))
    # sha256 of the key (see crypto.fingerprint): duplicate checks and the quota budget's name.
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    is_verified: Mapped[bool] = mapped_column(default=False)
    per_minute: Mapped[int] = mapped_column(default=4)
    per_day: Mapped[int] = mapped_column(default=500)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when VirusTotal answered 429: no call is spent on this key before then.
    exhausted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

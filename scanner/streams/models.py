from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db_types import UTCDateTime, new_uuid, utcnow
from ..extensions import db


class StreamSlot(db.Model):
    """One open event stream. Counting a user's slots caps their open streams across every web
    process; `expires_at` frees the slot of a process that died with the stream open."""

    __tablename__ = "stream_slots"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

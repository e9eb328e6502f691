from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, new_uuid, utcnow
from ..extensions import db


def _username_key(context: DefaultExecutionContext) -> str:
    # Rows made without the service (fixtures, scripts) still get a uniqueness key; the service
    # always sets it from the normalised name.
    return context.get_current_parameters()["username"].casefold()


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    # As the user wrote it (NFKC-normalised); `username_key` is the case-folded form that must be
    # unique, so "Alice", "alice" and a full-width "ａｌｉｃｅ" are one account name.
    username: Mapped[str] = mapped_column(String(32), unique=True)
    username_key: Mapped[str] = mapped_column(String(32), unique=True, default=_username_key)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    # VirusTotal shares uploads with its customers; an analyst may keep every file private.
    never_upload: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class TokenFamily(db.Model):
    """Every token descended from one login: a session.

    Revoking the row ends the session: its refresh tokens stop rotating and its access tokens
    (which carry the family id) are refused. Rotation updates the row first, so a rotation and a
    revocation of the same family are serialised by the row lock and cannot both win.
    """

    __tablename__ = "token_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the newest token of the family expires; nothing of it is valid after this.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(db.Model):
    """One row per issued refresh token; a family is every token descended from one login."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("token_families.id", ondelete="CASCADE"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_by: Mapped[str | None] = mapped_column(String(36))

    # Tells the unit of work to insert a new family before its first token.
    family: Mapped[TokenFamily] = relationship()


class RevokedToken(db.Model):
    """Revoked access tokens, kept until they would have expired anyway."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginFailure(db.Model):
    """Failed sign-in attempts per client address or account name, within one window.

    Used when there is no Redis, so every web process of the machine shares the counts.
    """

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

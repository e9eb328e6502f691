from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_request_context
from flask_limiter.util import get_remote_address
from sqlalchemy import delete, func, insert, select

from ..db_types import new_uuid, utcnow
from ..errors import AppError
from ..extensions import db
from ..logs import request_id
from .models import AuditEvent

# The actions, named <object>.<verb>, so a filter on a prefix finds a family.
ACTIONS = (
    "auth.login",
    "auth.logout",
    "auth.register",
    "auth.password_change",
    "auth.profile_update",
    "key.create",
    "key.update",
    "key.delete",
    "key.validate",
    "file.upload",
    "file.delete",
    "scan.start",
    "scan.rescan",
    "bulk.create",
    "bulk.cancel",
    "results.export",
    "admin.list_users",
    "admin.read_audit",
    "admin.set_role",
    "admin.create_admin",
)
OUTCOMES = ("success", "failure", "denied")
# Detail values are short facts (a code, a format, a count); anything longer is cut.
DETAIL_MAX = 200


def _short(value: Any) -> Any:
    return value if isinstance(value, int | bool | None) else str(value)[:DETAIL_MAX]


def _values(
    action: str,
    outcome: str,
    actor: Any,
    target_type: str | None,
    target_id: Any,
    details: dict[str, Any] | None,
    actor_name: str | None,
) -> dict[str, Any]:
    if action not in ACTIONS or outcome not in OUTCOMES:
        raise ValueError(f"unknown audit action or outcome: {action} {outcome}")  # a name the filters would miss
    in_request = has_request_context()
    return {
        "id": new_uuid(),
        "created_at": utcnow(),
        "actor_id": getattr(actor, "id", None),
        "actor_name": getattr(actor, "username", None) or actor_name,
        "address": get_remote_address() if in_request else None,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id) if target_id is not None else None,
        "outcome": outcome,
        "request_id": request_id() if in_request else None,
        "details": {k: _short(v) for k, v in (details or {}).items()},
    }


def record(
    action: str,
    *,
    actor: Any = None,
    target_type: str | None = None,
    target_id: Any = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> AuditEvent:
    """Add an event to the current transaction; the caller's commit writes it with the action."""
    event = AuditEvent(**_values(action, outcome, actor, target_type, target_id, details, actor_name))
    db.session.add(event)
    return event


def record_failure(
    action: str,
    *,
    actor: Any = None,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
    outcome: str = "failure",
) -> None:
    """Write an event now, in its own transaction: the request that failed will roll back."""
    values = _values(action, outcome, actor, target_type, target_id, details, actor_name)
    with db.engine.begin() as conn:
        conn.execute(insert(AuditEvent).values(**values))


@contextmanager
def failures_recorded(action: str, **fields: Any) -> Iterator[None]:
    """Record a refused action (with the error's code) in a transaction of its own, and re-raise."""
    try:
        yield
    except AppError as exc:
        details = {**fields.pop("details", {}), "code": exc.code}
        # The request fails: drop its half-done work first, which also frees the database for the
        # write below (SQLite lets one writer at a time).
        db.session.rollback()
        record_failure(action, outcome="denied" if exc.status == 403 else "failure", details=details, **fields)
        raise


@dataclass(frozen=True)
class Filters:
    action: str | None = None
    actor_id: uuid.UUID | None = None
    outcome: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[AuditEvent]
    page: int
    per_page: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return -(-self.total_items // self.per_page)


def search(filters: Filters, page: int, per_page: int) -> Page:
    """Newest first. `action` matches a whole name ("key.create") or a family ("key")."""
    query = select(AuditEvent)
    if filters.action:
        query = query.where(
            (AuditEvent.action == filters.action) | AuditEvent.action.startswith(filters.action + ".", autoescape=True)
        )
    if filters.actor_id:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.target_id:
        query = query.where(AuditEvent.target_id == filters.target_id)
    if filters.since:
        query = query.where(AuditEvent.created_at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.created_at < filters.until)
    total = db.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    items = db.session.scalars(
        query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return Page(list(items), page, per_page, total)


def prune() -> int:
    """Delete events older than AUDIT_RETENTION_DAYS; the caller commits."""
    cutoff = utcnow() - timedelta(days=current_app.config["AUDIT_RETENTION_DAYS"])
    return db.session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff)).rowcount

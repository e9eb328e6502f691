"""Single flight: when several scans need the same sha256 at once, one of them (the owner) talks
to VirusTotal and the others wait for the report it stores."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db_types import utcnow
from ..extensions import db
from .models import Scan, ScanFlight

ACTIVE = ("pending", "scanning")


def _owner_is_alive(flight: ScanFlight) -> bool:
    owner = db.session.get(Scan, flight.owner_scan_id) if flight.owner_scan_id else None
    if owner is None or owner.status not in ACTIVE:
        return False
    # An owner whose next step is long overdue lost its task; the sweep or a waiter takes over.
    grace = timedelta(seconds=current_app.config["SCAN_STUCK_GRACE_SECONDS"])
    return owner.next_check_at is None or owner.next_check_at >= utcnow() - grace


def join(sha256: str, scan_id: uuid.UUID) -> ScanFlight | None:
    """The flight this scan now owns, or None when a live scan owns it. Taking over a dead
    owner's flight keeps its analysis id, so the new owner polls rather than uploads again."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The common case, a file no one else is scanning, is this one statement: the new flight.
    created = db.session.scalars(
        insert(ScanFlight)
        .values(sha256=sha256, owner_scan_id=scan_id, started_at=utcnow())
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(ScanFlight)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if created is not None:
        return created
    flight = db.session.get(ScanFlight, sha256, populate_existing=True)
    if flight is None:  # released between the insert and the read: try again next step
        return None
    if flight.owner_scan_id == scan_id:
        return flight
    if _owner_is_alive(flight):
        return None
    previous = flight.owner_scan_id
    taken = db.session.execute(
        update(ScanFlight)
        .where(ScanFlight.sha256 == sha256, ScanFlight.owner_scan_id == previous)
        .values(owner_scan_id=scan_id)
    ).rowcount
    if not taken:
        return None
    db.session.refresh(flight)
    return flight


def release(sha256: str, scan_id: uuid.UUID) -> None:
    db.session.execute(delete(ScanFlight).where(ScanFlight.sha256 == sha256, ScanFlight.owner_scan_id == scan_id))


def remember_analysis(sha256: str, scan_id: uuid.UUID, analysis_id: str) -> None:
    db.session.execute(
        update(ScanFlight)
        .where(ScanFlight.sha256 == sha256, ScanFlight.owner_scan_id == scan_id)
        .values(vt_analysis_id=analysis_id)
    )

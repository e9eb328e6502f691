"""Single flight: when several scans need the same sha256 at once, one of them (the owner) talks
to VirusTotal and the others wait for the report it stores."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, update

from ..db_types import utcnow
from ..extensions import db
from ..upsert import upsert
from .models import Scan, ScanFlight

ACTIVE = ("pending", "scanning")
# Writes go to the table, past the ORM: a flight object a step read is not used after the write,
# so there is nothing in the session to bring in step with it (which costs more than the write).
_FLIGHTS = ScanFlight.__table__
_JOIN = upsert(ScanFlight.__table__, ("sha256", "owner_scan_id", "started_at"), ("sha256",), returning=("sha256",))


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
    # The common case, a file no one else is scanning, is this one statement: the new flight.
    now = utcnow()
    if db.session.execute(_JOIN, {"sha256": sha256, "owner_scan_id": scan_id, "started_at": now}).first():
        # As inserted; the scan that owns it is the only writer of its analysis id.
        return ScanFlight(sha256=sha256, owner_scan_id=scan_id, vt_analysis_id=None, started_at=now)
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
    db.session.execute(delete(_FLIGHTS).where(_FLIGHTS.c.sha256 == sha256, _FLIGHTS.c.owner_scan_id == scan_id))


def remember_analysis(sha256: str, scan_id: uuid.UUID, analysis_id: str) -> None:
    db.session.execute(
        update(_FLIGHTS)
        .where(_FLIGHTS.c.sha256 == sha256, _FLIGHTS.c.owner_scan_id == scan_id)
        .values(vt_analysis_id=analysis_id)
    )

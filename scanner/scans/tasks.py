"""Celery tasks for file scans. They only schedule: the rules are in `pipeline`."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from sqlalchemy import select

from .. import logs, work
from ..extensions import db
from . import pipeline
from .models import Scan

log = logging.getLogger(__name__)


@shared_task(name="scanner.scans.tasks.run_scan", acks_late=True, reject_on_worker_lost=True)
def run_scan(scan_id: str) -> None:
    """Take the scan's next step, then schedule the one after (a poll, a quota wait, a retry)."""
    row_id = uuid.UUID(scan_id)
    claimed: list[Scan] = []

    def trace(scan: Scan) -> None:
        claimed.append(scan)
        _trace(scan.request_id)

    delay = pipeline.advance(row_id, on_claim=trace)
    if not claimed:  # a late or duplicate message claims nothing: its lines are about the scan all the same
        _trace(db.session.scalar(select(Scan.request_id).where(Scan.id == row_id)))
    for waiter in db.session.info.pop("wake_ids", set()):
        work.enqueue(run_scan, waiter)
    work.enqueue(run_scan, scan_id, delay)


def _trace(request_id: str | None) -> None:
    """The task's lines, and the message of the step after, carry the id of the request that
    started the scan, as its row has it (read with the claim): a message the sweep queued has
    none, and one a scan sharing the file woke carries the id of that other scan's request. Not
    undone here: the end of the task resets its log context (scanner/logs.py), after Celery's own
    line about it."""
    logs.bind(request_id=request_id)


@shared_task(name="scanner.scans.tasks.sweep_scans", acks_late=True)
def sweep_scans() -> int:
    """Re-queue scans whose next step is long overdue (a lost message, a killed worker)."""
    overdue = pipeline.due_scans()
    for scan_id in overdue:
        work.enqueue(run_scan, scan_id)
    if overdue:
        log.info("re-queued %d overdue scans", len(overdue))
    return len(overdue)


def enqueue_scan(scan_id: uuid.UUID) -> None:
    """Called after the scan row is committed. If the broker is away the row is still there and
    the sweep starts it once the broker is back."""
    work.enqueue(run_scan, scan_id)

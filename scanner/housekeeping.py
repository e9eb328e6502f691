"""Housekeeping the scheduler runs: what is past its retention goes (audit events, request counts,
expired sessions). A module of its own, above the features whose rows it prunes."""

from __future__ import annotations

import logging

from celery import shared_task

from .audit.services import prune as prune_audit
from .auth.services import purge_expired
from .extensions import db
from .providers.metrics import prune as prune_request_counts

log = logging.getLogger(__name__)


@shared_task(name="scanner.housekeeping.prune_old_records", acks_late=True)
def prune_old_records() -> dict[str, int]:
    """Audit events past AUDIT_RETENTION_DAYS, request counts past METRICS_RETENTION_HOURS, and
    expired sessions, revocations and sign-in failures (what `flask users purge-expired` does)."""
    counts = {"audit_events": prune_audit(), "request_counts": prune_request_counts(), **purge_expired()}
    db.session.commit()
    log.info("pruned old records", extra={"pruned": counts})
    return counts

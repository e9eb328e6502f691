"""Celery tasks for lookups and bulk jobs. They only schedule: the rules are in `services`,
`bulk` and `engine`. Waiting (for quota, an analysis, a retry) is a re-queue with a countdown,
never a sleep; the sweep restarts whatever a lost message or a killed worker left behind."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from .. import events
from . import bulk, services

log = logging.getLogger(__name__)


@shared_task(name="scanner.lookups.tasks.finish_lookup", acks_late=True, reject_on_worker_lost=True)
def finish_lookup(lookup_id: str) -> None:
    """Take a pending lookup's next step, then come back when the next one is due (for a lookup
    waiting for quota: when the key's budget frees)."""
    delay = services.advance(uuid.UUID(lookup_id))
    events.publish("lookup", lookup_id)
    if delay is not None:
        finish_lookup.apply_async(args=[lookup_id], countdown=delay)


@shared_task(name="scanner.lookups.tasks.run_bulk", acks_late=True, reject_on_worker_lost=True)
def run_bulk(job_id: str) -> None:
    """Drive a bulk job for one slice, then continue when its next item is due."""
    delay = bulk.run(uuid.UUID(job_id), on_change=lambda: events.publish("bulk", job_id))
    if delay is not None:
        run_bulk.apply_async(args=[job_id], countdown=delay)


@shared_task(name="scanner.lookups.tasks.sweep_lookups", acks_late=True)
def sweep_lookups() -> int:
    """Re-queue lookups and bulk jobs whose next step is long overdue."""
    lookups, jobs = services.due_lookups(), bulk.due_jobs()
    for lookup_id in lookups:
        finish_lookup.delay(str(lookup_id))
    for job_id in jobs:
        run_bulk.delay(str(job_id))
    if lookups or jobs:
        log.info("re-queued %d overdue lookups and %d bulk jobs", len(lookups), len(jobs))
    return len(lookups) + len(jobs)


def enqueue_lookup(lookup_id: uuid.UUID, countdown: float = 0.0) -> None:
    """Called after the lookup is committed; if the broker is away the sweep starts it later."""
    try:
        finish_lookup.apply_async(args=[str(lookup_id)], countdown=countdown)
    except Exception:  # the broker's failure must not turn a saved lookup into a 500
        log.warning("could not enqueue lookup %s; the sweep will finish it", lookup_id, exc_info=True)


def enqueue_bulk(job_id: uuid.UUID) -> None:
    try:
        run_bulk.delay(str(job_id))
    except Exception:
        log.warning("could not enqueue bulk job %s; the sweep will start it", job_id, exc_info=True)

"""Celery tasks for lookups and bulk jobs. They only schedule: the rules are in `services`,
`bulk` and `engine`. Waiting (for quota, an analysis, a retry) is a re-queue with a countdown,
never a sleep; the sweep restarts whatever a lost message or a killed worker left behind."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from .. import events, work
from . import bulk, services

log = logging.getLogger(__name__)


@shared_task(name="scanner.lookups.tasks.finish_lookup", acks_late=True, reject_on_worker_lost=True)
def finish_lookup(lookup_id: str) -> None:
    """Take a pending lookup's next step, then come back when the next one is due (for a lookup
    waiting for quota: when the key's budget frees)."""
    delay = services.advance(uuid.UUID(lookup_id))
    events.publish("lookup", lookup_id)
    work.enqueue(finish_lookup, lookup_id, delay)


@shared_task(name="scanner.lookups.tasks.run_bulk", acks_late=True, reject_on_worker_lost=True)
def run_bulk(job_id: str) -> None:
    """Drive a bulk job for one slice, then continue when its next item is due."""
    delay = bulk.run(uuid.UUID(job_id), on_change=lambda: events.publish("bulk", job_id))
    work.enqueue(run_bulk, job_id, delay)


@shared_task(name="scanner.lookups.tasks.sweep_lookups", acks_late=True)
def sweep_lookups() -> int:
    """Re-queue lookups and bulk jobs whose next step is long overdue."""
    lookups, jobs = services.due_lookups(), bulk.due_jobs()
    for lookup_id in lookups:
        work.enqueue(finish_lookup, lookup_id)
    for job_id in jobs:
        work.enqueue(run_bulk, job_id)
    if lookups or jobs:
        log.info("re-queued %d overdue lookups and %d bulk jobs", len(lookups), len(jobs))
    return len(lookups) + len(jobs)


def enqueue_lookup(lookup_id: uuid.UUID, countdown: float = 0.0) -> None:
    """Called after the lookup is committed; if the broker is away the sweep starts it later."""
    work.enqueue(finish_lookup, lookup_id, countdown)


def enqueue_bulk(job_id: uuid.UUID) -> None:
    work.enqueue(run_bulk, job_id)

"""Bulk jobs: a list of indicators uploaded at once, answered in the background within the key's
budget.

A job is rows: the job, and one item per unique indicator (`IndicatorWork`, stepped by the same
engine as a single lookup). One task at a time drives a job (it holds the job's lease):

1. every new item is first answered from the cache or the stored reports, in batches: what is
   already known finishes at once and costs nothing;
2. the rest are stepped one by one in line order, each VirusTotal request taking a token of the
   user's budget; when the budget is spent the task stops and comes back when a token frees, so
   VirusTotal never has to answer 429;
3. after `BULK_SLICE_SECONDS` the task hands the worker back and queues its continuation.

A killed worker loses at most the item it held: its lease runs out, the sweep restarts the job,
and the item is stepped again.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, select, update

from .. import work
from ..api_keys import selection
from ..auth.access import own_or_404, owned_or_404
from ..auth.models import User
from ..db_types import new_uuid, utcnow
from ..errors import Conflict, InvalidIndicator, QuotaExhausted, ValidationFailed
from ..extensions import db
from ..request_args import page_of, parse_uuid
from . import answers, indicators, steps
from .indicators import Indicator
from .models import ITEM_STATUSES, JOB_ACTIVE, JOB_FINISHED, BulkItem, BulkJob

# How many invalid lines a job keeps (and the answer lists) with their reasons; the rest are counted.
INVALID_SHOWN = 1000
HEADER_NAMES = ("ioc", "indicator", "observable", "value")
_BATCH = 500
_CSV_TYPES = ("text/csv", "application/csv", "application/vnd.ms-excel")


# -- reading an upload ------------------------------------------------------------------------


@dataclass
class ParsedUpload:
    indicators: list[tuple[int, Indicator]] = field(default_factory=list)  # (first line, indicator)
    invalid: list[dict[str, Any]] = field(default_factory=list)  # the first INVALID_SHOWN
    invalid_count: int = 0
    duplicates: int = 0
    _seen: set[Indicator] = field(default_factory=set)

    def add(self, line: int, value: str) -> None:
        try:
            found = indicators.parse(value)
        except InvalidIndicator as error:
            self.invalid_count += 1
            if len(self.invalid) < INVALID_SHOWN:
                self.invalid.append({"line": line, "value": value[:200], "reason": error.message})
            return
        if found in self._seen:
            self.duplicates += 1
            return
        self._seen.add(found)
        self.indicators.append((line, found))


def parse_upload(content: bytes, filename: str | None, content_type: str | None, max_iocs: int) -> ParsedUpload:
    """The unique valid indicators of a CSV (its `ioc` column, or the first column when there is
    no header row) or of plain text (one per line; blank lines and `#` comments skipped), with
    every invalid line's number and reason. Raises ValidationFailed for a file that is not text
    or holds more than `max_iocs` indicators, InvalidIndicator when it holds none."""
    if b"\x00" in content:
        raise ValidationFailed("The file must be text: a CSV, or one indicator per line")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("The file must be UTF-8 text: a CSV, or one indicator per line") from None
    parsed = ParsedUpload()
    rows = _csv_rows(text) if _is_csv(text, filename, content_type) else _text_rows(text)
    for line, value in rows:
        parsed.add(line, value)
        if len(parsed.indicators) > max_iocs:
            raise ValidationFailed(
                f"More than {max_iocs} indicators: split the list into jobs of at most {max_iocs}",
                details={"max_iocs": max_iocs, "stopped_at_line": line},
            )
    if not parsed.indicators:
        raise InvalidIndicator(
            "No valid indicator in the file: expected " + indicators.EXPECTED + ", one per line or in a CSV column",
            details={"invalid_count": parsed.invalid_count, "invalid_lines": parsed.invalid[:100]},
        )
    return parsed


def _is_csv(text: str, filename: str | None, content_type: str | None) -> bool:
    if (filename or "").lower().endswith(".csv") or (content_type or "").split(";")[0].strip() in _CSV_TYPES:
        return True
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        cells = next(csv.reader([first]), [])
    except csv.Error:  # a first line no CSV reader takes (one over its field limit) is not a header
        return False
    return _header_column(cells) is not None


def _header_column(cells: list[str]) -> int | None:
    names = [cell.strip().lower() for cell in cells]
    for wanted in HEADER_NAMES:
        if wanted in names:
            return names.index(wanted)
    return None


def _text_rows(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if value and not value.startswith("#"):
            yield number, value


def _csv_rows(text: str) -> Iterator[tuple[int, str]]:
    reader = csv.reader(io.StringIO(text))
    column: int | None = None
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
                continue
            if column is None:
                column = _header_column(cells)
                if column is not None:
                    continue
                column = 0
            yield reader.line_num, cells[column] if column < len(cells) else ""
    except csv.Error as error:
        raise ValidationFailed(f"The CSV cannot be read at line {reader.line_num}: {error}") from None


# -- creating, reading, cancelling ------------------------------------------------------------


def create_job(user: User, content: bytes, filename: str | None, content_type: str | None) -> BulkJob:
    """A job and its items, due now. The key is checked first, so a job that could never run is
    answered 400 instead of failing later."""
    selection.pick_key(user)
    parsed = parse_upload(content, filename, content_type, current_app.config["BULK_MAX_IOCS"])
    now = utcnow()
    job = BulkJob(
        id=new_uuid(),
        user_id=user.id,
        filename=(filename or "")[:255] or None,
        status="pending",
        total_iocs=len(parsed.indicators),
        invalid_count=parsed.invalid_count,
        duplicate_count=parsed.duplicates,
        invalid_lines=parsed.invalid,
        created_at=now,
        next_run_at=now,
    )
    db.session.add(job)
    db.session.flush()
    rows = [
        {"job_id": job.id, "line": line, "ioc": ind.value, "ioc_type": ind.type, "stage": "new", "next_check_at": now}
        for line, ind in parsed.indicators
    ]
    for start in range(0, len(rows), _BATCH):
        db.session.execute(insert(BulkItem), rows[start : start + _BATCH])
    return job


def get_job(viewer: User, job_id: str) -> BulkJob:
    return owned_or_404(db.session.get(BulkJob, parse_uuid(job_id, "job ID")), viewer, "Bulk job not found")


def progress(job_id: uuid.UUID) -> dict[str, int]:
    """Items per status, and `processed` (answered or failed)."""
    counts = dict.fromkeys(ITEM_STATUSES, 0)
    query = select(BulkItem.status, func.count()).where(BulkItem.job_id == job_id).group_by(BulkItem.status)
    counts.update({status: n for status, n in db.session.execute(query)})
    counts["processed"] = counts["completed"] + counts["failed"]
    return counts


def items_page(job_id: uuid.UUID, statuses: tuple[str, ...], page: int, per_page: int) -> tuple[list[BulkItem], int]:
    query = select(BulkItem).where(BulkItem.job_id == job_id)
    if statuses:
        query = query.where(BulkItem.status.in_(statuses))
    return page_of(query.order_by(BulkItem.line), page, per_page)


def all_items(job_id: uuid.UUID) -> Iterator[BulkItem]:
    """Every item in line order, a batch at a time (no cursor held between batches)."""
    after = 0
    while True:
        batch = db.session.scalars(
            select(BulkItem).where(BulkItem.job_id == job_id, BulkItem.line > after).order_by(BulkItem.line).limit(1000)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].line
        db.session.expunge_all()


def list_jobs(user: User, page: int, per_page: int) -> tuple[list[BulkJob], int]:
    query = select(BulkJob).where(BulkJob.user_id == user.id)
    return page_of(query.order_by(BulkJob.created_at.desc(), BulkJob.id.desc()), page, per_page)


def cancel(viewer: User, job_id: str) -> BulkJob:
    """Stop a job: items not yet answered are cancelled, answers already given are kept."""
    job = own_or_404(db.session.get(BulkJob, parse_uuid(job_id, "job ID")), viewer, "Bulk job not found")
    if job.status == "cancelled":
        return job
    if job.status in JOB_FINISHED:
        raise Conflict(f"The job has already {job.status}")
    job.status, job.finished_at, job.next_run_at = "cancelled", utcnow(), None
    _stop_pending_items(job)
    db.session.flush()
    return job


def _stop_pending_items(job: BulkJob) -> None:
    """Give the job's unanswered items the job's final status (cancelled or failed)."""
    values = {"status": job.status, "stage": job.status, "next_check_at": None, "finished_at": job.finished_at}
    if job.status == "failed":
        values["error"] = f"The job failed: {job.error}"
    db.session.execute(update(BulkItem).where(BulkItem.job_id == job.id, BulkItem.status == "pending").values(values))


# -- the worker's side ------------------------------------------------------------------------


JOBS = work.WorkRows(BulkJob, BulkJob.next_run_at, JOB_ACTIVE, "LOOKUP")
ITEMS = steps.work_rows(BulkItem)


def _cfg(name: str) -> Any:
    return current_app.config[name]


def run(job_id: uuid.UUID, on_change: Any = None) -> float | None:
    """Drive the job for one slice; returns seconds until it should run again, None when it has
    nothing left (finished, cancelled, failed) or is not due (another task drives it). `on_change()`
    is called after each commit that changed what the job shows."""
    return work.advance(JOBS, job_id, lambda job: _Slice(on_change or (lambda: None)))


class _Slice:
    """A bulk job's side of the work-row engine: a step is one slice of the job's work."""

    def __init__(self, notify: Any) -> None:
        self.notify = notify

    def step(self, job: BulkJob) -> float | None:
        if job.status == "pending":
            job.status, job.started_at = "running", utcnow()
            db.session.commit()
            self.notify()
        user = db.session.get(User, job.user_id)
        _answer_known(job.id, self.notify)
        delay = _step_items(job.id, user, self.notify)
        return _after_slice(job.id, delay, self.notify)

    def wait_for_quota(self, job: BulkJob, exc: QuotaExhausted) -> float:
        return max(exc.retry_after, 0.05)  # items wait for quota themselves; this is a safety net

    def retry(self, job: BulkJob, reason: str) -> None:
        job.error = reason

    def fail(self, job: BulkJob, reason: str) -> None:
        job.status, job.error, job.finished_at = "failed", reason, utcnow()
        _stop_pending_items(job)
        self.notify()


def _answer_known(job_id: uuid.UUID, notify: Any) -> None:
    """Finish every new item the cache or the store can answer; queue the rest for VirusTotal."""
    while True:
        batch = db.session.scalars(
            select(BulkItem)
            .where(BulkItem.job_id == job_id, BulkItem.status == "pending", BulkItem.stage == "new")
            .order_by(BulkItem.line)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        known = answers.local_answers(steps.indicator_of(item) for item in batch)
        for item in batch:
            answer = known.get(steps.indicator_of(item))
            if answer is not None:
                steps.finish(item, answer)
            else:
                item.stage = "queued"
        db.session.commit()
        notify()


def _step_items(job_id: uuid.UUID, user: User, notify: Any) -> float | None:
    """Step due items in line order until none is due (None), the budget is spent (returns the
    wait) or the slice ends (0). Each item is claimed like any work row, so a second driver, were
    there one, would skip it."""
    slice_ends = time.monotonic() + _cfg("BULK_SLICE_SECONDS")
    indicator_steps = steps.IndicatorSteps(user)
    while time.monotonic() < slice_ends and _still_running(job_id):
        candidate = db.session.scalar(
            select(BulkItem.id)
            .where(BulkItem.job_id == job_id, BulkItem.status == "pending", BulkItem.next_check_at <= utcnow())
            .order_by(BulkItem.next_check_at, BulkItem.line)
            .limit(1)
        )
        if candidate is None:
            return None
        wait = work.advance(ITEMS, candidate, lambda item: indicator_steps)
        notify()
        if db.session.get(BulkItem, candidate).stage == "waiting_for_quota":
            # The user's every key is out of tokens: the other items would wait just the same.
            return wait
    return 0.0


def _still_running(job_id: uuid.UUID) -> bool:
    return db.session.scalar(select(BulkJob.status).where(BulkJob.id == job_id)) == "running"


def _after_slice(job_id: uuid.UUID, delay: float | None, notify: Any) -> float | None:
    job = db.session.get(BulkJob, job_id, populate_existing=True)
    if job.status in JOB_FINISHED:
        # Stopped while an item's step was running: that step may have written its item back as
        # pending after the stop had settled the job's items.
        _stop_pending_items(job)
        db.session.commit()
        notify()
        return None
    if delay is not None:
        return delay
    now = utcnow()
    due: datetime | None = db.session.scalar(
        select(func.min(BulkItem.next_check_at)).where(BulkItem.job_id == job_id, BulkItem.status == "pending")
    )
    if due is not None:
        return max((due - now).total_seconds(), 0.0)
    if _has_pending(job_id):
        return 0.0
    finished = db.session.execute(
        update(BulkJob)
        .where(BulkJob.id == job_id, BulkJob.status == "running")
        .values(status="completed", finished_at=now, next_run_at=None)
    ).rowcount
    db.session.commit()
    if finished:
        notify()
    return None


def _has_pending(job_id: uuid.UUID) -> bool:
    query = select(BulkItem.id).where(BulkItem.job_id == job_id, BulkItem.status == "pending").limit(1)
    return db.session.scalar(query) is not None


def due_jobs(limit: int = 100) -> list[uuid.UUID]:
    """Unfinished jobs whose next run is long overdue (see `work.overdue`)."""
    return work.overdue(JOBS, limit)

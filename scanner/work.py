"""The one way scans, lookups and bulk jobs are worked on: rows that say when their next step is due.

A work row holds its state (`status`), when its next step is due (its due column:
`next_check_at`, or `next_run_at` for a bulk job) and `attempts`, the steps begun since the last
one that ended well. A Celery message carries only the row's id, so any message for it may be
late, duplicated or lost without harm:

- `claim` takes a row for one step with one UPDATE that succeeds only when the row is active and
  due, and moves the due time to the end of a lease. A duplicate or redelivered message finds the
  row not due and does nothing: a row never has two chains of tasks. The claim is committed at
  once, so that a step that kills its worker has been counted (below). A feature whose steps
  commit before any work that could (`claim_with_step`: a scan's step commits before its first
  VirusTotal call and before recording a report) has it committed with that first commit instead,
  one commit less: the row is locked meanwhile, so a duplicate message waits and then finds it
  not due, and a step that fails before that commit puts the claim its rollback undid back.
- `Lease` renews that lease from a thread while the step runs (an upload may take minutes), so
  the sweep never hands a row that is being worked on to a second worker; a killed worker stops
  renewing and its rows are free again within a lease.
- `attempt` runs the feature's step and settles the outcome: progress, a wait for quota, a retry
  with backoff and jitter, or a failure with a readable reason. Every claim counts as an attempt
  until a step ends well, so any exception, and a worker killed mid-step, is counted and the row
  fails after the limit instead of looping.
- `commit_through_outage` commits what a step must not lose, such as the analysis VirusTotal
  started for a file we sent, through a database connection that fails meanwhile.
- `enqueue` queues the next step with a countdown when it is near. A longer wait is left to the
  sweep: a message waiting in the broker past its visibility timeout would be delivered twice.
- `overdue` finds active rows whose due time passed more than a grace period ago (a lost message,
  a killed worker, a wait left to the sweep) for the periodic sweep to queue again.

Settings come per feature, by prefix: `<PREFIX>_LEASE_SECONDS`, `_STUCK_GRACE_SECONDS`,
`_MAX_ATTEMPTS`, `_RETRY_BASE_SECONDS`, `_RETRY_MAX_SECONDS`.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from celery import Task
from flask import current_app
from sqlalchemy import bindparam, inspect, or_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.attributes import NO_VALUE, set_committed_value

from .db_types import utcnow
from .errors import AppError, QuotaExhausted
from .extensions import db
from .metrics import SharedCounter
from .virustotal.errors import VirusTotalError, VTConnectionError

log = logging.getLogger(__name__)
R = TypeVar("R")
# A countdown may fire a hair before the time it was computed for.
EARLY = timedelta(seconds=1)

# By the kind of row (the prefix of its settings: scan, lookup) and why, wherever the step ran.
RETRIES = SharedCounter(
    "scanner_work_retries_total", "Steps of scans and lookups that will be tried again", ("work", "cause")
)
QUOTA_WAITS = SharedCounter(
    "scanner_work_quota_waits_total", "Steps of scans and lookups that wait for a key's VirusTotal quota", ("work",)
)


@dataclass(frozen=True)
class WorkRows:
    """A table of work rows: its model (with `id`, `status`, `attempts`), its due column, the
    statuses still being worked on, the prefix of its settings, and a many-to-one relationship
    every step reads (`with_parent`: a scan's file), loaded with the claim where the database can."""

    model: Any
    due: InstrumentedAttribute
    active: tuple[str, ...]
    settings: str
    with_parent: InstrumentedAttribute | None = None
    # Told the columns of a row `write` sent (the feature's cached reads may show some of them).
    on_write: Callable[[Any, frozenset[str]], None] | None = None
    # The claim is committed with the step's first commit, not alone: only for steps that commit
    # before any work that might kill the worker (before it, a worker killed leaves no count).
    claim_with_step: bool = False

    def setting(self, name: str) -> Any:
        return current_app.config[f"{self.settings}_{name}"]

    def seconds(self, name: str) -> timedelta:
        return timedelta(seconds=self.setting(name))


class Steps(Protocol[R]):
    """What a feature tells the engine about its rows."""

    def step(self, row: R) -> float | None:
        """Take the next step; seconds until the one after, None once the row is finished."""

    def wait_for_quota(self, row: R, exc: QuotaExhausted) -> float | None:
        """Record that the row waits for VirusTotal quota; seconds to wait, or None if it failed."""

    def retry(self, row: R, reason: str) -> None:
        """Record that the row will be tried again after `reason`."""

    def fail(self, row: R, reason: str) -> None:
        """Finish the row as failed, for `reason` (shown to its owner)."""


def claim(rows: WorkRows, row_id: Any, *, commit: bool = True, until: datetime | None = None) -> Any | None:
    """Take an active, due row for one step (a lease, to `until` or one lease from now) and count
    the attempt; None when it is not due, finished, or another worker holds it. Committed now, or
    (`commit=False`) by the caller."""
    now = utcnow()
    # The row comes back with the UPDATE that takes it (RETURNING): no second read of it. On
    # PostgreSQL its parent comes too (UPDATE ... FROM); SQLite's RETURNING names only the table
    # updated, so there the parent is read when the step first needs it.
    parent = rows.with_parent if db.session.get_bind().dialect.name == "postgresql" else None
    values = {"row_id": row_id, "due_by": now + EARLY, "lease_until": until or now + rows.seconds("LEASE_SECONDS")}
    options = {"synchronize_session": False, "populate_existing": True}
    taken = db.session.execute(_claim_statement(rows, parent), values, execution_options=options).first()
    row = taken[0] if taken else None
    if parent is not None and row is not None:
        set_committed_value(row, parent.key, taken[1])
    if commit or row is None:
        db.session.commit()
    return row


class _Claim:
    """A claim taken in the step's transaction: until that transaction ends, a rollback undoes it."""

    def __init__(self, rows: WorkRows, row: Any) -> None:
        self._rows, self._id, self._until = rows, row.id, getattr(row, rows.due.key)
        self._transaction = db.session().get_transaction()

    def uncommitted(self) -> bool:
        return db.session().get_transaction() is self._transaction

    def restore(self) -> bool:
        """After a rollback that undid the claim: the same claim again (the rollback brought the
        count back, so it is counted once; the same lease), committed, for the step's outcome to be
        settled on. False when another worker took the row in between.

        A commit whose answer was lost with its connection may have been made all the same: the
        row then holds this very lease, which no other claim (nor the sweep) would have set, and
        the claim stands as committed."""
        if claim(self._rows, self._id, until=self._until) is not None:
            return True
        # Read back as `claim` reads it (the row as it stands, for the outcome to be settled on),
        # and uncounted: the count that commit made stands.
        model, due = self._rows.model, self._rows.due
        held = (
            update(model)
            .where(model.id == self._id, model.status.in_(self._rows.active), due == self._until)
            .values({due.key: self._until})
            .returning(model)
        )
        options = {"synchronize_session": False, "populate_existing": True}
        ours = db.session.execute(held, execution_options=options).first() is not None
        db.session.commit()
        return ours


class _Taken(Exception):
    """Another worker took the row while this step's claim was rolled back: the row is theirs."""


@functools.lru_cache(maxsize=16)
def _claim_statement(rows: WorkRows, parent: InstrumentedAttribute | None) -> Any:
    """Built once: a statement's construction and cache key cost more than its execution."""
    model, due = rows.model, rows.due
    statement = (
        update(model)
        .where(
            model.id == bindparam("row_id"),
            model.status.in_(rows.active),
            or_(due.is_(None), due <= bindparam("due_by", type_=due.type)),
        )
        .values({due.key: bindparam("lease_until", type_=due.type), "attempts": model.attempts + 1})
    )
    if parent is None:
        return statement.returning(model)
    return statement.where(parent.property.primaryjoin).returning(model, parent.property.mapper.class_)


def write(rows: WorkRows, row: Any) -> None:
    """Send the row's changed columns in one UPDATE by its id, past the ORM's unit of work, and
    mark them as saved. A step writes its row two or three times; the unit of work's flush costs
    several times the statement itself. A row with a changed relationship is left to the flush."""
    state = inspect(row)
    if not state.committed_state:
        return
    columns = _columns(rows.model)
    values = {}
    for key, before in state.committed_state.items():
        if key not in columns:
            return
        now = state.dict.get(key, NO_VALUE)
        if now is not NO_VALUE and (before is NO_VALUE or before != now):
            values[key] = now
    if values:
        names = frozenset(values)
        db.session.execute(_write_statement(rows.model, names), {"row_id": row.id, **_bound(values)})
        if rows.on_write is not None:
            rows.on_write(row, names)
    # As a flush leaves it: nothing pending, and no longer among the session's modified objects,
    # which every later flush would otherwise walk through the unit of work again.
    state._commit_all(state.dict, db.session().identity_map)


@functools.lru_cache(maxsize=8)
def _columns(model: Any) -> frozenset[str]:
    return frozenset(attr.key for attr in inspect(model).column_attrs)


def _bound(values: dict[str, Any]) -> dict[str, Any]:
    return {f"new_{key}": value for key, value in values.items()}


@functools.lru_cache(maxsize=256)
def _write_statement(model: Any, names: frozenset[str]) -> Any:
    """Built once per set of columns (a step changes the same few each time), so its compiled
    form is found in SQLAlchemy's cache without building the statement again."""
    mapper = inspect(model)
    table = mapper.local_table
    values = {}
    for name in sorted(names):
        column = mapper.column_attrs[name].columns[0]
        values[column.key] = bindparam(f"new_{name}", type_=column.type)
    return update(table).where(table.c.id == bindparam("row_id", type_=table.c.id.type)).values(values)


class Lease:
    """Renews a claimed row's lease from a thread while its step runs.

    A renewal moves the due time only while it is still the one this lease set: once the step
    has recorded its own due time, or the sweep has handed the row on, the lease is over. So the
    thread is never waited for (on SQLite it may be queued behind this very thread's write lock).
    """

    def __init__(self, rows: WorkRows, row_id: Any, until: datetime) -> None:
        self._table, self._due, self._id, self._until = rows.model.__table__, rows.due.key, row_id, until
        self._length = rows.seconds("LEASE_SECONDS")
        self._engine = db.engine
        self._stop = threading.Event()

    def __enter__(self) -> Lease:
        threading.Thread(target=self._renew, name="lease", daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()

    def _renew(self) -> None:
        due = self._table.c[self._due]
        while not self._stop.wait(self._length.total_seconds() / 4):
            until = utcnow() + self._length
            try:
                with self._engine.begin() as conn:
                    renewed = conn.execute(
                        update(self._table)
                        .where(self._table.c.id == self._id, due == self._until)
                        .values({self._due: until})
                    ).rowcount
            except Exception:  # the database may be briefly away: the lease has time left
                log.warning("could not renew the lease of %s", self._id, exc_info=True)
                continue
            if not renewed:
                return
            self._until = until


def advance(rows: WorkRows, row_id: Any, steps: Any) -> float | None:
    """A worker's step for one row: claim it, run the step under a renewed lease, record when the
    next step is due and commit. `steps(row)` gives the feature's `Steps` for the row. Returns
    seconds until the next step; None when the row is finished or was not ours to take."""
    row = claim(rows, row_id, commit=not rows.claim_with_step)
    if row is None:
        return None
    taken = _Claim(rows, row) if rows.claim_with_step else None
    work: Steps = steps(row)
    limit = rows.setting("MAX_ATTEMPTS")
    if row.attempts > limit:
        # Earlier steps never got to record an outcome: each killed its worker or lost the database.
        work.fail(row, f"Stopped {row.attempts - 1} times before a step could finish; see the worker log")
        delay = None
    else:
        leased = getattr(row, rows.due.key)
        with Lease(rows, row_id, leased):
            try:
                delay = attempt(rows, row, work, claim=taken)
            except _Taken:
                return None
        if getattr(row, rows.due.key) != leased:  # a step that ended well wrote it with its changes
            db.session.commit()
            return delay
    setattr(row, rows.due.key, _due(delay))
    write(rows, row)
    db.session.commit()
    return delay


# The pauses before each new try of a write that must not be lost: a terminated connection is
# replaced at once, a restarting server takes seconds.
OUTAGE_PAUSES = (0.1, 0.5, 1.0, 2.0, 4.0)


def commit_through_outage(rows: WorkRows, row: Any, change: Callable[[], None]) -> None:
    """Make `change` (to `row` and whatever goes with it), write the row and commit. When the
    database fails that meanwhile (the connection terminated, the server restarting or
    unreachable; also a lock it could not get, or a deadlock), roll back and do it again, over a
    fresh connection, for some 8 seconds before the error is the step's: for the answer to a call
    that cannot be made again without cost. `change` must be one that can be made twice. The
    rollback drops whatever else the step had not committed, so the step commits before the call
    whose answer this keeps."""
    for pause in (*OUTAGE_PAUSES, None):
        try:
            change()
            write(rows, row)
            db.session.commit()
            return
        except DBAPIError as exc:
            if pause is None or not (exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)):
                raise
            db.session.rollback()
            log.warning("the database failed a write that must not be lost; again in %.1fs: %s", pause, exc.orig)
            time.sleep(pause)


def _due(delay: float | None) -> datetime | None:
    return utcnow() + timedelta(seconds=delay) if delay is not None else None


def attempt(
    rows: WorkRows, row: R, work: Steps[R], *, interactive: bool = False, claim: _Claim | None = None
) -> float | None:
    """Run one step and settle its outcome on the row (uncommitted); returns seconds until the
    next step, None once the row is finished.

    The row's attempt is counted already (by `claim`) unless `interactive`: a request is waiting
    for this step, on a row not yet stored, so a problem only the caller can fix (an AppError) or
    an unexpected one is raised to it instead of settled on the row. `claim`: the step's claim, put
    back if a rollback undoes it (raises _Taken when another worker took the row meanwhile).
    """
    if interactive:
        row.attempts = (row.attempts or 0) + 1  # type: ignore[attr-defined]
    # Named by its table: a row a request answers may be a plain object until it is stored.
    name = f"{rows.model.__name__} {getattr(row, 'id', None)}"  # read now: a failed flush expires the row
    try:
        delay = work.step(row)
        # Set before the flush, so that the row's changes are one UPDATE; if the flush fails, the
        # rollback below reads the counted attempts back.
        row.attempts = 0  # type: ignore[attr-defined]
        if not interactive:
            setattr(row, rows.due.key, _due(delay))
            write(rows, row)
        if db.session.registry.has():  # a step answered from the cache made no session
            db.session.flush()  # a write the database refuses is this step's failure too
    except QuotaExhausted as exc:
        row.attempts -= 1  # type: ignore[attr-defined]  # the pace of a key, not a failure of the row
        log.info("%s waits %.0fs for VirusTotal quota", name, exc.retry_after)
        QUOTA_WAITS.inc(rows.settings.lower())
        return work.wait_for_quota(row, exc)
    except VirusTotalError as exc:
        if not exc.retryable:
            work.fail(row, f"VirusTotal refused the request: {exc}")
            return None
        return _retry_or_fail(
            rows, row, work, name, ("virustotal", "VirusTotal kept failing"), str(exc), _unreachable_cap(exc)
        )
    except AppError as exc:  # no usable key, key inactive or deleted: nothing to wait for
        if interactive:
            raise
        work.fail(row, exc.message)
        return None
    except Exception as exc:
        if interactive:
            raise
        # Whatever the step flushed is dropped (the session is not even usable until then); what it
        # committed stays, the claim's count of this attempt with it, or the claim is put back.
        undone = claim is not None and claim.uncommitted()
        db.session.rollback()
        log.exception("unexpected error in a step of %s", name)
        if undone and not claim.restore():
            raise _Taken from exc
        # The exception's text may name hosts or users of our own services: the log has it.
        cause = ("internal", "An internal error kept stopping it")
        return _retry_or_fail(rows, row, work, name, cause, f"{type(exc).__name__}, see the log")
    return delay


def _retry_or_fail(
    rows: WorkRows, row: Any, work: Steps, name: str, cause: tuple[str, str], last: str, cap: float | None = None
) -> float | None:
    """`cause`: the retries counter's label and what the owner reads when the row fails."""
    label, kept_failing = cause
    limit = rows.setting("MAX_ATTEMPTS")
    if row.attempts >= limit:
        work.fail(row, f"{kept_failing} ({row.attempts} attempts), last: {last}")
        log.warning("%s failed after %d attempts: %s", name, row.attempts, last)
        return None
    cap = min(cap, rows.setting("RETRY_MAX_SECONDS")) if cap else rows.setting("RETRY_MAX_SECONDS")
    gives_up = utcnow() + timedelta(seconds=sum(_pause(rows, k, cap) for k in range(row.attempts, limit)))
    work.retry(row, f"{last}; retrying until {gives_up:%H:%M:%S} UTC")
    # Jitter spreads the retries of many rows that failed together.
    delay = _pause(rows, row.attempts, cap) * random.uniform(0.5, 1.0)
    log.warning("%s retries in %.0fs (attempt %d of %d): %s", name, delay, row.attempts, limit, last)
    RETRIES.inc(rows.settings.lower(), label)
    return delay


def _pause(rows: WorkRows, attempts: int, cap: float) -> float:
    """The longest pause before retry number `attempts`: doubling from the base up to `cap`."""
    return min(cap, rows.setting("RETRY_BASE_SECONDS") * 2 ** max(attempts - 1, 0))


def _unreachable_cap(exc: VirusTotalError) -> float | None:
    """With no connection to VirusTotal at all, pauses stay short (VT_UNREACHABLE_RETRY_MAX_SECONDS):
    the user hears within minutes that it cannot be reached, and work resumes soon after the network."""
    if isinstance(exc, VTConnectionError) and not exc.reached:
        return current_app.config["VT_UNREACHABLE_RETRY_MAX_SECONDS"]
    return None


def enqueue(task: Task, row_id: Any, delay: float | None = 0.0) -> None:
    """Queue the row's next step in `delay` seconds (None: it has none). A wait longer than
    WORK_MAX_COUNTDOWN_SECONDS is left to the sweep, which finds the row once it is due; a broker
    that is away is logged, not raised: the row is saved and the sweep queues it when it is back."""
    if delay is None or delay > current_app.config["WORK_MAX_COUNTDOWN_SECONDS"]:
        return
    try:
        task.apply_async(args=[str(row_id)], countdown=delay or None)
    except Exception:
        log.warning("could not queue %s for %s; the sweep will", task.name, row_id, exc_info=True)


def overdue(rows: WorkRows, limit: int) -> list[Any]:
    """Active rows whose next step is overdue by more than the grace period: their message was
    lost (a killed worker, a broker restart), their lease ran out, or their wait was too long for
    a countdown. Each is marked due now, so the next sweep does not queue it again before another
    grace period has passed."""
    now, model = utcnow(), rows.model
    stale = or_(rows.due.is_(None), rows.due < now - rows.seconds("STUCK_GRACE_SECONDS"))
    ids = list(db.session.scalars(select(model.id).where(model.status.in_(rows.active), stale).limit(limit)))
    if ids:
        db.session.execute(
            update(model)
            .where(model.id.in_(ids), stale)
            .values({rows.due.key: now})
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return ids

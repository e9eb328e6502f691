"""Versioned read cache for scan reports and history pages.

Each user has a version token, and every cached read of that user's scans is stored with the
token it was computed under. A change to any of the user's scans or files replaces the token
(`bump_scans_version`), which retires all of that user's entries at once: a read after the bump
finds a different token beside the entry, computes afresh and can never be served the old answer.
The token and the entry are read together, in one round trip.

Tokens are random rather than counters, so a token lost to eviction or a cache restart can never
be re-created with a value that older entries are still stored under.

The ordering that keeps this correct: a reader fetches the token *before* it reads the database,
and a writer bumps *after* it commits. Whatever a reader stores is then either filed under a token
that a later bump retires, or was read after the change.

The cache is only ever an optimisation: any cache error (Redis down) is logged and the read goes
to the database.

Each web process also keeps the reads it made or fetched (scanner/event_memory.py) until the
user's version changes: a new version is published as an event, and dropped at once in the process
that made it.

Besides the explicit `bump_scans_version` calls, ORM changes to `Scan` or `File` rows bump their
owners' tokens after the commit (see `_watch_session`), so a code path that forgets to call it
cannot make a read stale. Core `insert()`/`update()`/`delete()` statements bypass the ORM and still
need the explicit call, or `changed_after_commit` before the commit.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from flask import current_app
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from ...event_memory import Memory
from ...events import publish
from ...extensions import cache, db
from ...files.models import File
from ...metrics import count_cache
from ...redis_backoff import Backoff
from ..models import EngineResult, Scan

log = logging.getLogger(__name__)
T = TypeVar("T")

# Columns that only steer the pipeline; no read shows them, so changing them invalidates nothing.
_BOOKKEEPING = frozenset(
    {"attempts", "polls", "next_check_at", "deadline_at", "updated_at", "api_key_id", "vt_analysis_id"}
)
_backoff = Backoff("results cache (using the database)")
# session.info: owners whose cached reads the next commit retires.
_CHANGED = "results_changed_owners"


def _version_key(user_id: uuid.UUID | str) -> str:
    return f"results:v:{user_id}"


def _available() -> bool:
    return _backoff.available(cache.cache)


def _failed(operation: str, error: Exception) -> None:
    _backoff.failed(operation, error, cache.cache)


_REMEMBERED = Memory("results")  # a user's reads, kept while their version stands


def bump_scans_version(user_id: uuid.UUID | str) -> None:
    """Retire every cached read of this user's scans. Call it after committing any change to the
    user's scans, engine results or files; never raises."""
    try:
        cache.set(_version_key(user_id), uuid.uuid4().hex, timeout=0)
    except Exception as error:  # a failed bump leaves entries to expire on their timeout
        _failed("bump", error)
    # After the new version, here and (as the event arrives) in every other process: a read that
    # began before it keeps nothing, one that begins after reads the new version.
    _REMEMBERED.drop(str(user_id))
    publish("results", user_id)


def _new_token(user_id: uuid.UUID | str) -> str | None:
    """First read since the token was lost: the first reader's token wins and the rest adopt it."""
    key = _version_key(user_id)
    cache.add(key, uuid.uuid4().hex, timeout=0)
    return cache.get(key)


def _digest(params: Hashable) -> str:
    # The repr of a frozen dataclass of plain values, or of an id: the same in every process.
    return hashlib.sha256(repr(params).encode()).hexdigest()[:32]


def cached_read(
    user_id: uuid.UUID | str,
    kind: str,
    params: Hashable,
    compute: Callable[[], T],
    *,
    keep: Callable[[T], bool] = lambda value: True,
    timeout: int | None = None,
) -> T:
    """The value of `compute()` for these params (a frozen dataclass, an id), from the cache when
    this user's scans have not changed since it was stored. `keep` decides whether a fresh value
    is worth storing."""
    if not _available():
        return compute()
    owner, part = str(user_id), (kind, params)
    remembered = _REMEMBERED.get(owner, part)
    if remembered is not None:
        count_cache("results", hits=1, misses=0)
        return remembered
    began = _REMEMBERED.reading()  # before the version is read
    key = f"results:{kind}:{user_id}:{_digest(params)}"
    try:
        token, entry = cache.get_many(_version_key(user_id), key)
        if token is None:
            token = _new_token(user_id)
    except Exception as error:
        _failed("read", error)
        return compute()
    hit = entry is not None and token is not None and entry[0] == token
    count_cache("results", hits=int(hit), misses=int(not hit))
    if hit:
        _REMEMBERED.keep(owner, entry[1], began, part)
        return entry[1]
    value = compute()
    if keep(value):
        try:
            cache.set(key, (token, value), timeout=timeout or current_app.config["RESULTS_CACHE_SECONDS"])
        except Exception as error:
            _failed("write", error)
        else:
            _REMEMBERED.keep(owner, value, began, part)
    return value


def _changed_owners(session: Session) -> set[uuid.UUID]:
    owners: set[uuid.UUID] = set()
    scan_ids: set[uuid.UUID] = set()
    for obj in (*session.new, *session.deleted, *session.dirty):
        if isinstance(obj, EngineResult):
            scan_ids.add(obj.scan_id)
        elif isinstance(obj, Scan | File) and obj.user_id is not None and _visible_change(obj, session):
            owners.add(obj.user_id)
    scan_ids.discard(None)
    if scan_ids:
        owners.update(session.scalars(select(Scan.user_id).where(Scan.id.in_(scan_ids))))
    return owners


def _visible_change(obj: Scan | File, session: Session) -> bool:
    if obj in session.new or obj in session.deleted:
        return True
    state = inspect(obj)
    return any(attr.key not in _BOOKKEEPING and attr.history.has_changes() for attr in state.attrs)


@event.listens_for(db.session, "after_flush")
def _watch_session(session: Session, flush_context) -> None:
    owners = _changed_owners(session)
    if owners:
        session.info.setdefault(_CHANGED, set()).update(owners)


def changed_after_commit(user_id: uuid.UUID) -> None:
    """Retire the user's cached reads once the session commits: for changes written past the ORM
    (Core statements), which the session does not see."""
    db.session.info.setdefault(_CHANGED, set()).add(user_id)


def columns_changed(user_id: uuid.UUID, columns: Iterable[str]) -> None:
    """For a scan row written past the ORM: retire its owner's cached reads once the session
    commits, if a read shows any of these columns."""
    if not _BOOKKEEPING.issuperset(columns):
        changed_after_commit(user_id)


@event.listens_for(db.session, "after_commit")
def _bump_changed(session: Session) -> None:
    # Kept across a rollback on purpose: a spare bump costs one cache miss, a missed one a stale read.
    for user_id in session.info.pop(_CHANGED, ()):
        bump_scans_version(user_id)

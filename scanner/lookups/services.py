"""Single indicator lookups: answering one now (or as soon as quota allows), reading it back with
its notes, and a user's history of them."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, select

from .. import work
from ..auth.access import owned_or_404
from ..auth.models import User
from ..db_reads import holds_connection
from ..db_types import new_uuid, utcnow
from ..extensions import db
from ..grouped_insert import GroupedInsert
from ..request_args import SortKey, pagination, parse_uuid
from . import answers, indicators, steps
from .models import Lookup, LookupNote

SORT_KEYS = ("created_at", "score", "ioc")
# Seed 000 names the VirusTotal collections; its example answers with the plural, so both are taken.
ENDPOINT_TYPES = {
    "domain": "domain",
    "domains": "domain",
    "ip": "ip",
    "ips": "ip",
    "ip_address": "ip",
    "ip_addresses": "ip",
    "file": "file",
    "files": "file",
    "url": "url",
    "urls": "url",
}


class NewLookup:
    """A lookup a request is answering, not yet stored: the columns it was given, as plain
    attributes (one never given reads None, as on a new ORM object). Its first step runs on it,
    then it is INSERTed as it stands: nothing in between needs the session, and made as an ORM
    object it cost the web process more than the rest of an answer from the cache."""

    def __init__(self, **given: Any) -> None:
        self.__dict__.update(given)

    def __getattr__(self, name: str) -> Any:  # called only for an attribute never given
        if name in _LOOKUP_COLUMNS:
            return None
        raise AttributeError(name)

    def keep_details(self, details: dict[str, Any]) -> None:
        self.details = details

    def values(self) -> dict[str, Any]:
        """Column -> value, for the columns given (the table's defaults fill the others)."""
        return {_LOOKUP_COLUMNS[key]: value for key, value in self.__dict__.items()}


@dataclass(frozen=True)
class Checked:
    lookup: NewLookup
    delay: float | None  # seconds until a worker should take its next step; None: finished

    @property
    def pending(self) -> bool:
        return self.lookup.status == "pending"


def check(user: User, raw: str, force_refresh: bool = False, vt_type: str | None = None) -> Checked:
    """Look an indicator up now: cache, then stored report, then VirusTotal. When VirusTotal cannot
    answer yet (no quota, an analysis running, a transient failure) the lookup is kept pending for a
    worker. Raises InvalidIndicator, and NoActiveApiKey when VirusTotal must be asked and the user
    has no usable key. Writes the new lookup; the caller commits, then enqueues a pending one.
    Only the user's id is read: they may be outside the session (`signed_in_user()`)."""
    started = time.monotonic()
    ind = indicators.parse(raw, vt_type)
    lookup = NewLookup(
        id=new_uuid(),
        user_id=user.id,
        ioc=ind.value,
        ioc_type=ind.type,
        force_refresh=force_refresh,
        status="pending",
        stage="queued",
        attempts=0,
        polls=0,
        created_at=utcnow(),
    )
    delay = work.attempt(LOOKUPS, lookup, steps.IndicatorSteps(user, interactive=True), interactive=True)
    if delay is not None:
        lookup.next_check_at = utcnow() + timedelta(seconds=delay)
    lookup.total_ms = int((time.monotonic() - started) * 1000)
    _insert(lookup)
    return Checked(lookup, delay)


# A new lookup is written with one Core INSERT of the columns it was given. Through the session's
# unit of work, that one row cost the web process more than the rest of an answer from the cache;
# nothing is saved with it (its notes come later), and the answer is built from the NewLookup, not
# read back.
_LOOKUP_COLUMNS = {attr.key: attr.columns[0].key for attr in Lookup.__mapper__.column_attrs}
_INSERT_LOOKUP = insert(Lookup.__table__)
_LOOKUP_ROWS = GroupedInsert(Lookup.__table__)


def _insert(lookup: NewLookup) -> None:
    values = lookup.values()
    if _session_in_use():
        db.session.execute(_INSERT_LOOKUP, values)  # committed by the caller, with what else it wrote
        return
    # Alone (an answer from the cache wrote nothing else): committed now, with the rows of the
    # other answers in flight (scanner/grouped_insert.py).
    _LOOKUP_ROWS.write(values)


def _session_in_use() -> bool:
    """Whether the answer wrote through the session, or began a transaction on its connection."""
    if not db.session.registry.has():
        return False
    session = db.session()
    return bool(session.new or session.dirty or session.deleted) or holds_connection()


def endpoint_type(name: str) -> str:
    """Seed 000's endpoint_type as a VirusTotal type (validated by the schema)."""
    return ENDPOINT_TYPES[name.strip().lower()]


def get_lookup(viewer: User, lookup_id: str) -> Lookup:
    lookup = db.session.get(Lookup, parse_uuid(lookup_id, "lookup ID"))
    return owned_or_404(lookup, viewer, "Lookup not found")


def add_note(viewer: User, lookup_id: str, text: str) -> LookupNote:
    lookup = get_lookup(viewer, lookup_id)
    note = LookupNote(lookup_id=lookup.id, user_id=viewer.id, text=text.strip(), created_at=utcnow())
    db.session.add(note)
    db.session.flush()
    return note


def raw_report(lookup: Lookup) -> dict[str, Any] | None:
    """VirusTotal's object behind a finished lookup (what we hold now for its indicator)."""
    if lookup.provider_status != "ok":
        return None
    return answers.current_report(steps.indicator_of(lookup))


# -- the worker's side ------------------------------------------------------------------------


LOOKUPS = steps.work_rows(Lookup)


def advance(lookup_id: uuid.UUID) -> float | None:
    """The worker's step for a pending lookup; returns seconds until the next one, None when done."""
    return work.advance(LOOKUPS, lookup_id, lambda lookup: steps.IndicatorSteps(db.session.get(User, lookup.user_id)))


def due_lookups(limit: int = 500) -> list[uuid.UUID]:
    """Pending lookups whose next step is long overdue (see `work.overdue`)."""
    return work.overdue(LOOKUPS, limit)


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupQuery:
    """Validated history filters; `date_before` is exclusive."""

    types: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    ioc: str | None = None
    date_from: datetime | None = None
    date_before: datetime | None = None
    sort: tuple[SortKey, ...] = (SortKey("created_at", True),)
    page: int = 1
    per_page: int = 10

    def params(self) -> dict[str, Any]:
        return asdict(self)


def _order_by(name: str, descending: bool) -> list[ColumnElement]:
    column = {"created_at": Lookup.created_at, "score": Lookup.score, "ioc": Lookup.ioc}[name]
    # Lookups without a score (unknown, pending) sort last either way.
    return [column.desc().nulls_last() if descending else column.asc().nulls_last()]


def _filtered(user_id: uuid.UUID, query: LookupQuery) -> Select:
    conditions: list[ColumnElement[bool]] = [Lookup.user_id == user_id]
    if query.types:
        conditions.append(Lookup.ioc_type.in_(query.types))
    if query.verdicts:
        conditions.append(Lookup.verdict.in_(query.verdicts))
    if query.statuses:
        conditions.append(Lookup.status.in_(query.statuses))
    if query.ioc:
        conditions.append(Lookup.ioc == query.ioc)
    if query.date_from is not None:
        conditions.append(Lookup.created_at >= query.date_from)
    if query.date_before is not None:
        conditions.append(Lookup.created_at < query.date_before)
    return select(Lookup).where(*conditions)


def history_page(user_id: uuid.UUID, query: LookupQuery) -> dict[str, Any]:
    """One page of the user's lookups, newest first unless sorted otherwise."""
    stmt = _filtered(user_id, query)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    order = [clause for name, desc in query.sort for clause in _order_by(name, desc)]
    # A unique last key keeps pages stable: no lookup shows on two pages or on none.
    order.append(Lookup.id.desc() if query.sort[0].descending else Lookup.id.asc())
    rows = db.session.scalars(stmt.order_by(*order).offset((query.page - 1) * query.per_page).limit(query.per_page))
    return {
        "lookups": list(rows),
        "pagination": pagination(query.page, query.per_page, total),
    }

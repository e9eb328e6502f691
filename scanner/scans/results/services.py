"""Reading scans: one report, a file's scans, and a user's filtered, sorted, paged history.

History queries stay on the per-user indexes of `scans` (see `Scan.__table_args__`): filters and
the sort run over `scans` alone (joining `files` only for a filename or hash filter or sort) and
select ids only; the page's full rows are loaded afterwards by primary key, so a deep page walks
an index rather than dragging whole rows through the offset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, ColumnElement, Select, and_, func, or_, select

from ...auth.access import owned_or_404
from ...auth.models import User
from ...errors import Conflict, Forbidden, NotFound
from ...extensions import db
from ...files.models import File
from ...json_answers import made
from ...request_args import SortKey, pagination, parse_uuid
from ..models import Scan
from .cache import cached_read
from .query import HistoryQuery
from .report import FINISHED, scan_report, scan_row
from .schemas import ScanHistoryPageSchema

HASH_LENGTHS = ((File.md5, 32), (File.sha1, 40), (File.sha256, 64))
# Every hex digit sorts below "g", so [prefix, prefix + "g") is exactly the hashes starting with
# prefix: a range an ordinary b-tree index answers whatever the database's collation.
_AFTER_HEX = "g"
_LOAD_BATCH = 500


_JUDGED = (
    func.coalesce(Scan.malicious, 0)
    + func.coalesce(Scan.suspicious, 0)
    + func.coalesce(Scan.undetected, 0)
    + func.coalesce(Scan.harmless, 0)
)
# Sort keys whose column is NULL until a scan has a result. Such scans come last in either
# direction; rather than `NULLS LAST`, which no plain index can serve in both directions, the rows
# with a value and the rows without are read as two runs, each in index order.
_NULLABLE = {"scan_date": Scan.scan_date, "detection_ratio": Scan.malicious}


def _key_order(key: SortKey, nulls_last: bool) -> list[ColumnElement]:
    if key.name == "scan_date":
        columns = [Scan.scan_date]
    elif key.name == "detection_ratio":
        # Most detections first, then the larger panel of engines that gave a verdict.
        columns = [Scan.malicious, _JUDGED]
    elif key.name == "created_at":
        columns = [Scan.created_at]
    else:
        columns = [func.lower(File.filename)]
    clauses = [column.desc() if key.descending else column.asc() for column in columns]
    return [clause.nulls_last() for clause in clauses] if nulls_last else clauses


@dataclass(frozen=True)
class _Plan:
    """How one history query reads its ordered ids."""

    user_id: uuid.UUID
    conditions: tuple[ColumnElement[bool], ...]
    filter_on_file: bool  # a condition reads `files`
    sort_on_file: bool  # the order reads `files`; counting then needs no join (one file per scan)
    split: Any  # the leading key's nullable column, or None
    lead_order: tuple[ColumnElement, ...]
    rest_order: tuple[ColumnElement, ...]  # later keys, then the id: a unique last key keeps pages stable

    def select(self, *columns: Any, extra: tuple = (), ordered: bool = True) -> Select:
        stmt = select(*columns).select_from(Scan)
        if self.filter_on_file or (ordered and self.sort_on_file):
            # A scan's file is always its owner's (scans.services.get_file_for), so naming the
            # owner on `files` too changes no answer; it lets PostgreSQL start from the user's
            # files in filename order (ix_files_user_lower_filename, migration 9d4f2b7c1e63).
            stmt = stmt.join(File, File.id == Scan.file_id).where(File.user_id == self.user_id)
        return stmt.where(*self.conditions, *extra)

    def counts(self) -> tuple[int, int]:
        """(matching scans, those with a value for the leading key)."""
        if self.split is None:
            total = db.session.scalar(self.select(func.count(), ordered=False))
            return total, total
        total, keyed = db.session.execute(self.select(func.count(), func.count(self.split), ordered=False)).one()
        return total, keyed

    def ids(self, offset: int, limit: int, counts: tuple[int, int]) -> list[uuid.UUID]:
        if self.split is None:
            return self._fetch((), self.lead_order + self.rest_order, offset, limit)
        total, keyed = counts
        ids: list[uuid.UUID] = []
        if offset < keyed:
            ids = self._fetch((self.split.is_not(None),), self.lead_order + self.rest_order, offset, limit)
        if len(ids) < limit and total > keyed:
            ids += self._fetch((self.split.is_(None),), self.rest_order, max(0, offset - keyed), limit - len(ids))
        return ids

    def _fetch(self, extra: tuple, order: tuple, offset: int, limit: int) -> list[uuid.UUID]:
        stmt = self.select(Scan.id, extra=extra).order_by(*order).offset(offset).limit(limit)
        return list(db.session.scalars(stmt))


def verdict_condition(verdict: str) -> ColumnElement[bool]:
    """`report.verdict` in SQL."""
    completed = Scan.status == "completed"
    malicious = func.coalesce(Scan.malicious, 0)
    suspicious = func.coalesce(Scan.suspicious, 0)
    judged_clean = func.coalesce(Scan.undetected, 0) + func.coalesce(Scan.harmless, 0)
    if verdict == "malicious":
        return and_(completed, Scan.malicious > 0)
    if verdict == "suspicious":
        return and_(completed, malicious == 0, Scan.suspicious > 0)
    if verdict == "clean":
        return and_(completed, malicious == 0, suspicious == 0, judged_clean > 0)
    return or_(Scan.status != "completed", and_(malicious == 0, suspicious == 0, judged_clean == 0))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _hash_condition(prefix: str) -> ColumnElement[bool]:
    prefix = prefix.lower()
    ranges = [
        and_(column >= prefix, column < prefix + _AFTER_HEX) for column, length in HASH_LENGTHS if len(prefix) <= length
    ]
    return or_(*ranges)


def _plan(user_id: uuid.UUID, query: HistoryQuery) -> _Plan:
    conditions: list[ColumnElement[bool]] = [Scan.user_id == user_id]
    if query.statuses:
        conditions.append(Scan.status.in_(query.statuses))
    if query.verdicts:
        conditions.append(or_(*(verdict_condition(v) for v in query.verdicts)))
    if query.detection_min is not None:
        conditions.append(Scan.malicious >= query.detection_min)
    if query.detection_max is not None:
        conditions.append(Scan.malicious <= query.detection_max)
    if query.date_from is not None:
        conditions.append(Scan.scan_date >= query.date_from)
    if query.date_before is not None:
        conditions.append(Scan.scan_date < query.date_before)
    if query.filename:
        conditions.append(Scan.file_id.in_(select(_files_named(user_id, query.filename).c.id)))
    if query.hash_prefix:
        conditions.append(_hash_condition(query.hash_prefix))
    lead, *rest = query.sort
    return _Plan(
        user_id=user_id,
        conditions=tuple(conditions),
        filter_on_file=bool(query.hash_prefix),
        sort_on_file=any(key.name == "filename" for key in query.sort),
        split=_NULLABLE.get(lead.name),
        lead_order=tuple(_key_order(lead, nulls_last=False)),
        rest_order=(
            *(clause for key in rest for clause in _key_order(key, nulls_last=True)),
            Scan.id.desc() if lead.descending else Scan.id.asc(),
        ),
    )


def _files_named(user_id: uuid.UUID, text: str) -> CTE:
    """The user's files (a scan's file is its owner's) whose name contains `text`, found first
    and on their own: on PostgreSQL from the trigram index (migration 9d4f2b7c1e63), a few
    hundred rows at most, whose scans are then read by file. Joined to the scans instead, the
    planner misjudges how many names match and reads every file."""
    pattern = f"%{_escape_like(text)}%"
    named = select(File.id).where(File.user_id == user_id, File.filename.ilike(pattern, escape="\\"))
    return named.cte("named_files").prefix_with("MATERIALIZED")


def _load(ids: Sequence[uuid.UUID]) -> list[Scan]:
    """Scans (with their files) in the order of `ids`."""
    if not ids:
        return []
    found = {scan.id: scan for scan in db.session.scalars(select(Scan).where(Scan.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _history_page(user_id: uuid.UUID, query: HistoryQuery) -> dict[str, Any]:
    plan = _plan(user_id, query)
    counts = plan.counts()
    ids = plan.ids((query.page - 1) * query.per_page, query.per_page, counts)
    return {
        "scans": [scan_row(scan) for scan in _load(ids)],
        "pagination": pagination(query.page, query.per_page, counts[0]),
    }


def history_page(user_id: uuid.UUID, query: HistoryQuery) -> dict[str, Any]:
    """One page of a user's scans: `{"scans": [...], "pagination": {...}}`."""
    return cached_read(user_id, "history", query, lambda: _history_page(user_id, query))


_PAGE = ScanHistoryPageSchema()


def history_answer(user_id: uuid.UUID, query: HistoryQuery) -> str:
    """GET /api/scan/results's JSON: the page as ScanHistoryPageSchema shows it, made once per
    change of the user's scans."""
    return cached_read(user_id, "history-answer", query, lambda: made(_PAGE, _history_page(user_id, query)))


@dataclass
class HistoryExport:
    total: int  # scans matching the filters
    limit: int
    rows: Iterator[dict[str, Any]]  # at most `limit` of them, in order, loaded as they are consumed

    @property
    def truncated(self) -> bool:
        return self.total > self.limit


def history_export(user_id: uuid.UUID, query: HistoryQuery, limit: int) -> HistoryExport:
    plan = _plan(user_id, query)
    counts = plan.counts()
    ids = plan.ids(0, limit, counts)

    def rows() -> Iterator[dict[str, Any]]:
        for start in range(0, len(ids), _LOAD_BATCH):
            yield from (scan_row(scan) for scan in _load(ids[start : start + _LOAD_BATCH]))

    return HistoryExport(total=counts[0], limit=limit, rows=rows())


def user_scans(viewer: User, user_id: str, query: HistoryQuery) -> dict[str, Any]:
    """Another user's history is for admins only; an admin asking about nobody gets 404."""
    target = parse_uuid(user_id, "user ID")
    if target != viewer.id:
        if not viewer.is_admin:
            raise Forbidden("You may only list your own scans")
        if db.session.get(User, target) is None:
            raise NotFound("User not found")
    return history_page(target, query)


def file_scans(viewer: User, file_id: str) -> list[dict[str, Any]]:
    """Every scan of one file, oldest first."""
    file = owned_or_404(db.session.get(File, parse_uuid(file_id, "file ID")), viewer, "File not found")
    scans = db.session.scalars(select(Scan).where(Scan.file_id == file.id).order_by(Scan.created_at, Scan.id))
    return [scan_row(scan) for scan in scans]


def _load_report(viewer: User, scan_id: uuid.UUID) -> dict[str, Any]:
    scan = owned_or_404(db.session.get(Scan, scan_id), viewer, "Scan not found")
    return scan_report(scan, list(scan.results))


def finished_report_for(viewer: User, scan_id: str) -> dict[str, Any]:
    """The report to export: a finished scan's only, since an export is handed on as the answer."""
    report = scan_report_for(viewer, scan_id)
    if report["status"] not in FINISHED:
        raise Conflict(
            f"The scan is not finished (status: {report['status']}): export it once its status is "
            "completed, failed or not_found",
            code="SCAN_NOT_FINISHED",
            details={"status": report["status"]},
        )
    return report


def scan_report_for(viewer: User, scan_id: str) -> dict[str, Any]:
    """The full report of one of the viewer's scans (any scan for an admin). Only the owner's
    finished reports are cached: an unfinished one is about to change, and an admin's reads of
    other users' scans must not live under the admin's version token."""
    sid = parse_uuid(scan_id, "scan ID")
    return cached_read(
        viewer.id,
        "report",
        sid,
        lambda: _load_report(viewer, sid),
        keep=lambda report: report["user_id"] == viewer.id and report["status"] in FINISHED,
    )

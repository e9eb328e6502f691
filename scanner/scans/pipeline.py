"""The scan state machine. Each call of `advance` takes one step for one scan and says when the
next step is due; the Celery task around it only schedules. Every step is safe to run twice:
a scan is claimed with a lease before anything happens, verdicts are replaced, not appended,
and what VirusTotal already gave us (an analysis id, a report) is kept on the row or in the
store before the next call is made.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import delete, select, update

from .. import work
from ..api_keys import selection
from ..db_types import utcnow
from ..errors import QuotaExhausted
from ..events import publish
from ..extensions import db
from ..files.models import File
from ..files.storage import blob_store
from ..insert_many import insert_many
from ..virustotal.errors import NotFoundError, VirusTotalError
from ..virustotal.reports import detection_ratio, parse_stats
from ..virustotal.store import file_object_from_analysis, get_report, save_report
from . import flight
from .models import EngineResult, Scan
from .results.cache import changed_after_commit, columns_changed

log = logging.getLogger(__name__)
T = TypeVar("T")
ACTIVE = flight.ACTIVE
COLUMNS = {
    "malicious": "malicious",
    "suspicious": "suspicious",
    "undetected": "undetected",
    "harmless": "harmless",
    "timeout": "timeout",
    "confirmed-timeout": "confirmed_timeout",
    "failure": "failure",
    "type-unsupported": "type_unsupported",
}


def _cfg(name: str) -> Any:
    return current_app.config[name]


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _written(scan: Scan, columns: frozenset[str]) -> None:
    # Written past the ORM (work.write): the owner's cached reads are retired by hand.
    columns_changed(scan.user_id, columns)


# A step commits before its first VirusTotal call (`_vt`) and before recording a report it found
# stored; before either, it only reads and joins the file's flight: its claim goes with that commit.
SCANS = work.WorkRows(
    Scan, Scan.next_check_at, ACTIVE, "SCAN", with_parent=Scan.file, on_write=_written, claim_with_step=True
)
# The keys the running step read for its first VirusTotal call.
_step_keys: ContextVar[selection.KeyChoice | None] = ContextVar("scan_step_keys", default=None)


class ScanSteps:
    """The scan's side of the work-row engine."""

    def step(self, scan: Scan) -> float | None:
        # No query of a step reads what the step has not flushed yet, so the scan's changes wait
        # for the commit before a VirusTotal call or the step's end: one UPDATE each time.
        token = _step_keys.set(None)
        try:
            with db.session.no_autoflush:
                return _step(scan)
        finally:
            _step_keys.reset(token)

    def wait_for_quota(self, scan: Scan, exc: QuotaExhausted) -> float:
        scan.status, scan.stage = "pending", "waiting_for_quota"
        return max(exc.retry_after, 0.05)

    def retry(self, scan: Scan, reason: str) -> None:
        scan.error = reason

    def fail(self, scan: Scan, reason: str) -> None:
        _fail(scan, reason)


def advance(scan_id: uuid.UUID, on_claim: Callable[[Scan], None] | None = None) -> float | None:
    """Run the next step; returns seconds until the following one, or None when nothing is left
    (or another task has the scan). `on_claim(scan)` is called once the scan is taken, before its step."""
    session = db.session()
    # A step commits before each VirusTotal call and at its end. The scan it holds under a lease
    # is written by no one else meanwhile, so it need not be read again after each commit (a
    # SELECT of the scan and one of its file each time); rows others write (the flight, the key,
    # a stored report) are read afresh wherever they are read.
    session.expire_on_commit = False

    def steps(scan: Scan) -> ScanSteps:
        if on_claim is not None:
            on_claim(scan)
        return ScanSteps()

    try:
        delay = work.advance(SCANS, scan_id, steps)
    finally:
        session.expire_on_commit = True
    publish("scan", scan_id)  # wakes GET /api/stream/scans/{scan_id}
    return delay


def _fail(scan: Scan, reason: str) -> None:
    scan.status, scan.stage, scan.error = "failed", "failed", reason
    _settled(scan)
    return None


def _settled(scan: Scan) -> None:
    """The scan has its verdict, or has failed: free the file's flight for the next scan of it,
    wake the scans that waited on it, and say so (the line carries the upload's request id)."""
    scan.next_check_at, scan.completed_at = None, utcnow()
    flight.release(scan.file.sha256, scan.id)
    _wake_waiters(scan)
    log.log(
        logging.WARNING if scan.status == "failed" else logging.INFO,
        "scan %s %s: %s",
        scan.id,
        scan.status,
        scan.error or scan.detection_ratio,
        extra={"scan_status": scan.status, "detection_ratio": scan.detection_ratio},
    )


def _vt(scan: Scan, fn: Callable[[Any], T]) -> T:
    # The key is read in this step's transaction, which is then committed: the quota store takes
    # its own lock on the database and our pending writes must not hold one, and the user sees
    # the stage the scan is in while VirusTotal answers. A step's second call (the upload after
    # the lookup) uses the keys as read for its first, a moment before.
    keys = _step_keys.get()
    if keys is None:
        keys = selection.choose(scan.user_id, scan.api_key_id)
        _step_keys.set(keys)
    work.write(SCANS, scan)
    db.session.commit()
    return keys.call(fn)


def _step(scan: Scan) -> float | None:
    if scan.vt_analysis_id:
        return _poll(scan)
    sha256 = scan.file.sha256
    owned = flight.join(sha256, scan.id)
    # The store is read after the join, never before: an owner stores its report and leaves the
    # flight in one commit, so a report stored by the scan we would wait for, or by the one that
    # just left the flight to us, is seen by this one look.
    report = usable_report(scan)
    if report is not None:
        db.session.commit()  # the claim, before the work of recording (scanner/work.py)
        _record(scan, report, "store")  # leaves the flight if it is ours
        return None
    if owned is None:
        scan.status, scan.stage = "scanning", "waiting_for_flight"
        return _cfg("SCAN_POLL_INTERVALS")[0]
    scan.status = "scanning"
    if owned.vt_analysis_id:  # a previous owner got this far before it died
        return _start_waiting(scan, owned.vt_analysis_id, poll_now=True)
    if scan.kind == "rescan" and scan.vt_lookup is None:
        return _start_waiting(scan, _rescan(scan))
    if scan.stage == "uploading":
        # An earlier attempt sent the file and never saved VirusTotal's answer (a worker killed, the
        # database gone, the connection dropped): ask whether it arrived before sending it again.
        scan.vt_lookup = None
    if scan.vt_lookup is None and _look_up(scan, sha256):
        return None
    if scan.vt_lookup == "stale":  # VirusTotal has it, but its verdicts are old: ask for new ones
        return _start_waiting(scan, _vt(scan, lambda c: c.rescan(sha256)))
    if scan.never_upload:
        return _not_found(scan)
    return _start_waiting(scan, _upload(scan))


def _look_up(scan: Scan, sha256: str) -> bool:
    """Ask VirusTotal for the file; True when its report was fresh enough to finish the scan."""
    scan.stage = "looking_up"
    try:
        found = _vt(scan, lambda c: c.get_file(sha256))
    except NotFoundError:
        found = None
    if found is not None and _fresh_enough(found):
        save_report("file", sha256, found)
        _record(scan, found, "virustotal")
        return True
    # The next VirusTotal call commits this first, so a quota wait before it does not cost
    # a second lookup (with two tokens needed back to back, it could otherwise never end).
    scan.vt_lookup = "unknown" if found is None else "stale"
    return False


def _rescan(scan: Scan) -> str:
    sha256 = scan.file.sha256
    try:
        return _vt(scan, lambda c: c.rescan(sha256))
    except NotFoundError:
        scan.vt_lookup = "unknown"
        if scan.never_upload:
            raise VirusTotalError(
                "VirusTotal no longer has the file and uploading it is disabled for this scan", code="NotFoundError"
            ) from None
        return _upload(scan)


def _upload(scan: Scan) -> str:
    file: File = scan.file
    # However long the upload takes, the lease is renewed meanwhile (work.Lease): no second
    # worker uploads the file again.
    scan.stage = "uploading"
    try:
        with blob_store().open(file.blob_key) as blob:
            return _vt(scan, lambda c: c.upload_file(blob, file.filename))
    except FileNotFoundError as exc:
        raise VirusTotalError(f"the stored copy of the file is missing: {exc}", code="BlobMissing") from None


def _start_waiting(scan: Scan, analysis_id: str, poll_now: bool = False) -> float:
    """Wait for `analysis_id`: one VirusTotal just started (for a file sent, or a new analysis
    asked for), or, with `poll_now`, one a previous owner of the flight stored."""

    def wait() -> None:
        scan.vt_analysis_id, scan.stage, scan.polls = analysis_id, "waiting_for_analysis", 0
        scan.deadline_at = utcnow() + _seconds(_cfg("SCAN_DEADLINE_SECONDS"))
        flight.remember_analysis(scan.file.sha256, scan.id, analysis_id)

    if poll_now:
        wait()
        return 0.0
    # Committed at once, and through a connection that fails meanwhile. Lost, the next step would
    # find the scan still `uploading` and look the file up before sending it again; but VirusTotal
    # knows a file only once its analysis ends, so it would be sent again.
    work.commit_through_outage(SCANS, scan, wait)
    return _cfg("SCAN_POLL_INTERVALS")[0]


def _poll(scan: Scan) -> float | None:
    if scan.deadline_at is None:
        scan.deadline_at = utcnow() + _seconds(_cfg("SCAN_DEADLINE_SECONDS"))
    if utcnow() > scan.deadline_at:
        minutes = _cfg("SCAN_DEADLINE_SECONDS") / 60
        return _fail(scan, f"VirusTotal did not finish the analysis within {minutes:g} minutes")
    scan.stage = "waiting_for_analysis"
    analysis = _vt(scan, lambda c: c.get_analysis(scan.vt_analysis_id))
    status = ((analysis.get("data") or {}).get("attributes") or {}).get("status")
    if status != "completed":
        intervals = _cfg("SCAN_POLL_INTERVALS")
        scan.polls += 1
        return intervals[min(scan.polls, len(intervals) - 1)]
    report = file_object_from_analysis(analysis)
    sha256 = scan.file.sha256
    report["id"] = report["attributes"]["sha256"] = sha256
    save_report("file", sha256, report)
    _record(scan, report, "virustotal")
    return None


def _fresh_enough(file_object: dict) -> bool:
    analysed = (file_object.get("attributes") or {}).get("last_analysis_date")
    if not analysed:
        return False
    age = utcnow() - datetime.fromtimestamp(int(analysed), UTC)
    return age <= timedelta(days=_cfg("SCAN_REPORT_MAX_AGE_DAYS"))


def usable_report(scan: Scan) -> dict | None:
    """A stored report this scan may take without asking VirusTotal: for a scan, one fetched in
    the last SCAN_REUSE_HOURS whose analysis is fresh enough; for a rescan, only one made after
    the rescan was asked for."""
    row = get_report("file", scan.file.sha256)
    if row is None:
        return None
    if scan.kind == "rescan":
        analysed = (row.report.get("attributes") or {}).get("last_analysis_date") or 0
        fresh = row.fetched_at > scan.created_at and int(analysed) >= int(scan.created_at.timestamp())
        return row.report if fresh else None
    if row.fetched_at < utcnow() - timedelta(hours=_cfg("SCAN_REUSE_HOURS")):
        return None
    return row.report if _fresh_enough(row.report) else None


def _record(scan: Scan, report: dict, source: str) -> None:
    # Only a scan recorded before has verdicts to replace: they are written in the same
    # transaction as engines_total.
    recorded_before = scan.engines_total is not None
    attributes = report.get("attributes") or {}
    stats = parse_stats(attributes)
    for category, column in COLUMNS.items():
        setattr(scan, column, stats[category])
    malicious, judged = detection_ratio(stats)
    scan.engines_total, scan.detection_ratio = judged, f"{malicious}/{judged}"
    analysed = attributes.get("last_analysis_date")
    scan.scan_date = datetime.fromtimestamp(int(analysed), UTC) if analysed else utcnow()
    # The verdicts are written past the ORM: their owner's cached reads are retired after the commit.
    changed_after_commit(scan.user_id)
    if recorded_before:
        db.session.execute(delete(EngineResult).where(EngineResult.scan_id == scan.id))
    verdicts = [
        {
            "engine_name": str(verdict.get("engine_name") or engine)[:100],
            "engine_version": _text(verdict.get("engine_version"), 100),
            "category": str(verdict.get("category") or "undetected")[:32],
            "result": _text(verdict.get("result"), 255),
            "method": _text(verdict.get("method"), 32),
            "engine_update": _text(verdict.get("engine_update"), 32),
        }
        for engine, verdict in sorted((attributes.get("last_analysis_results") or {}).items())
    ]
    # Some seventy rows a scan, in one statement (as ORM objects they cost more CPU than the rest
    # of the step together, and as an executemany still a good part of it).
    insert_many(EngineResult.__table__, verdicts, scan_id=scan.id)
    scan.status, scan.stage, scan.report_source, scan.error = "completed", "done", source, None
    _settled(scan)


def _not_found(scan: Scan) -> None:
    scan.status, scan.stage, scan.report_source = "not_found", "done", "virustotal"
    scan.error = "VirusTotal does not know this file and uploading it is disabled"
    _settled(scan)


def _text(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def _wake_waiters(scan: Scan) -> None:
    """Scans waiting on this file's flight become due now; `wake_ids` are enqueued after commit.

    A waiter whose row is locked (its own step holds it, claimed and not yet committed; or a
    lease renewal, for a moment) is passed over: waiting for its step here could deadlock, as that
    step may be waiting for this release of the flight, and it looks at the flight itself. Should
    it have looked just before the release, it looks again after its poll interval."""
    waiting = db.session.scalars(
        select(Scan.id)
        .join(File, Scan.file_id == File.id)
        .where(File.sha256 == scan.file.sha256, Scan.id != scan.id, Scan.stage == "waiting_for_flight")
        .where(Scan.status.in_(ACTIVE))
        .with_for_update(of=Scan, skip_locked=True)
    ).all()
    if waiting:
        db.session.execute(
            update(Scan).where(Scan.id.in_(waiting)).values(next_check_at=utcnow()),
            execution_options={"synchronize_session": False},  # none of them is in this session
        )
        db.session.info.setdefault("wake_ids", set()).update(waiting)


def due_scans(limit: int = 500) -> list[uuid.UUID]:
    """Active scans whose next step is long overdue (see `work.overdue`)."""
    return work.overdue(SCANS, limit)

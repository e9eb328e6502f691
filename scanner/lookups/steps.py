"""One step of answering an indicator, for a single lookup or a bulk item alike.

`IndicatorSteps.step` reads the cheap answers first (cache, stored report), asks VirusTotal only
when they are missing or stale, and records the outcome on the row: finished, or pending with what
it waits for (quota, an analysis, a retry; the work-row engine, scanner/work.py, settles waits,
retries and failures) and when it is due again. It never commits; it writes nothing
before its VirusTotal call (on SQLite a pending write would block the quota store), and each of
its steps can run twice at the cost of at most one repeated request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app

from .. import work
from ..auth.models import User
from ..db_types import utcnow
from ..errors import NoActiveApiKey, QuotaExhausted
from ..extensions import db
from ..virustotal.quota import QuotaStoreUnavailable
from . import answers, scoring
from .indicators import Indicator
from .models import IndicatorWork


def _cfg(name: str) -> Any:
    return current_app.config[name]


def indicator_of(row: IndicatorWork) -> Indicator:
    return Indicator(row.ioc_type, row.ioc)  # type: ignore[arg-type]


def work_rows(model: type[IndicatorWork]) -> work.WorkRows:
    """Lookups or bulk items as work rows: pending ones are worked on, with the LOOKUP_ settings."""
    return work.WorkRows(model, model.next_check_at, ("pending",), "LOOKUP")


class IndicatorSteps:
    """An indicator's side of the work-row engine, for a single lookup or a bulk item alike."""

    def __init__(self, user: User, interactive: bool = False) -> None:
        self.user, self.interactive = user, interactive

    def step(self, row: IndicatorWork) -> float | None:
        ind = indicator_of(row)
        if row.vt_analysis_id:
            return _poll(row, self.user, ind)
        # A forced refresh takes no stored report older than itself, but one fetched since counts.
        not_before = getattr(row, "created_at", None) if row.force_refresh else None
        answer = answers.local_answer(ind, not_before)
        if answer is None:
            try:
                outcome = answers.fetch(
                    self.user, ind, submit_now=row.vt_lookup == "unknown", on_unknown=lambda: _learnt_unknown(row)
                )
            except NoActiveApiKey:
                if self.interactive:
                    raise
                raise NoActiveApiKey(
                    "No active VirusTotal API key: add one, then look the indicator up again"
                ) from None
            if isinstance(outcome, answers.Submitted):
                return _wait_for_analysis(row, outcome.analysis_id)
            answers.remember(ind, outcome)
            answer = outcome
        finish(row, answer)
        return None

    def wait_for_quota(self, row: IndicatorWork, exc: QuotaExhausted) -> float | None:
        return _wait_for_quota(row, exc)

    def retry(self, row: IndicatorWork, reason: str) -> None:
        if not row.vt_analysis_id:
            _pending(row, "retrying", "error")
        row.error = reason

    def fail(self, row: IndicatorWork, reason: str) -> None:
        fail(row, reason)


def _learnt_unknown(row: IndicatorWork) -> None:
    # Saved before the submission that follows: the gateway refuses to call VirusTotal with a
    # change pending, and a submission left waiting for quota must not look the URL up again.
    row.vt_lookup = "unknown"
    db.session.commit()


def _poll(row: IndicatorWork, user: User, ind: Indicator) -> float | None:
    if row.deadline_at is not None and utcnow() > row.deadline_at:
        minutes = _cfg("LOOKUP_ANALYSIS_DEADLINE_SECONDS") / 60
        fail(row, f"VirusTotal did not finish analysing it within {minutes:g} minutes")
        return None
    answer = answers.poll(user, ind, row.vt_analysis_id)
    if answer is None:
        intervals = _cfg("LOOKUP_POLL_INTERVALS")
        row.polls += 1
        return intervals[min(row.polls, len(intervals) - 1)]
    answers.remember(ind, answer)
    finish(row, answer)
    return None


def finish(row: IndicatorWork, answer: answers.Answer) -> None:
    """Record an answer: counts, verdict, score and evidence, as VirusTotal gave them."""
    worked_out = answer.outcome(indicator_of(row).vt_type)
    summary, found = worked_out.summary, worked_out.counts
    row.status, row.stage, row.provider_status = "completed", "done", answer.provider_status
    row.source, row.report_fetched_at, row.latency_ms = answer.source, answer.fetched_at, answer.latency_ms
    row.verdict, row.score, row.explanation = summary.verdict, summary.score, summary.explanation
    row.malicious_count = found.malicious if found else None
    row.suspicious_count = found.suspicious if found else None
    row.harmless_count = found.harmless if found else None
    row.undetected_count = found.undetected if found else None
    row.reputation = found.reputation if found else None
    row.error, row.next_check_at, row.finished_at = None, None, utcnow()
    row.keep_details(worked_out.details)


def fail(row: IndicatorWork, reason: str) -> None:
    summary = scoring.summarize(None, "error")
    row.status, row.stage, row.provider_status, row.error = "failed", "failed", "error", reason
    row.verdict, row.score, row.explanation = summary.verdict, summary.score, summary.explanation
    row.next_check_at, row.finished_at = None, utcnow()


def _pending(row: IndicatorWork, stage: str, provider_status: str) -> None:
    summary = scoring.summarize(None, provider_status)
    row.status, row.stage, row.provider_status = "pending", stage, provider_status
    row.verdict, row.score, row.explanation = summary.verdict, summary.score, summary.explanation


def _wait_for_quota(row: IndicatorWork, exc: QuotaExhausted) -> float | None:
    if not row.vt_analysis_id:  # a running analysis keeps its own deadline (see _poll)
        now = utcnow()
        if row.deadline_at is None:
            row.deadline_at = now + timedelta(seconds=_cfg("LOOKUP_MAX_WAIT_SECONDS"))
        if now > row.deadline_at:
            hours = _cfg("LOOKUP_MAX_WAIT_SECONDS") / 3600
            fail(row, f"No VirusTotal quota freed up within {hours:g} hours")
            return None
    _pending(row, "waiting_for_quota", "rate_limited")
    # A store outage is worth telling; running out of quota is just the pace of a key.
    row.error = exc.message if isinstance(exc, QuotaStoreUnavailable) else None
    return max(exc.retry_after, 0.05)


def _wait_for_analysis(row: IndicatorWork, analysis_id: str) -> float:
    _pending(row, "waiting_for_analysis", "pending")
    row.vt_analysis_id, row.polls, row.error = analysis_id, 0, None
    row.deadline_at = utcnow() + timedelta(seconds=_cfg("LOOKUP_ANALYSIS_DEADLINE_SECONDS"))
    return _cfg("LOOKUP_POLL_INTERVALS")[0]

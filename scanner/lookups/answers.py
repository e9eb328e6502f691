"""Where an indicator's answer comes from, cheapest first: the cache (seed 000's
`vt_{type}_{value}` keys), then our stored reports (`IndicatorReport`, shared with file scans),
then VirusTotal through the user's key budget. What VirusTotal says is kept in both.

A file report is stored once, under its sha256 (the row a file scan of the same content uses);
its md5 and sha1 are remembered as aliases so a lookup by either finds it for free. A hash
VirusTotal has never seen is remembered in the cache only, and only briefly.

Each web process also remembers the cache entries it read (scanner/event_memory.py): an indicator
asked about again and again is answered without a Redis round trip. A new answer from VirusTotal
is announced as the indicator's event, which every process's memory drops.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_request_context
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..api_keys import selection
from ..auth.models import User
from ..db_types import utcnow
from ..event_memory import Memory
from ..events import publish
from ..extensions import db
from ..files.models import File
from ..virustotal.client import VirusTotalClient
from ..virustotal.errors import NotFoundError
from ..virustotal.models import IndicatorReport
from ..virustotal.store import save_report
from . import cache, scoring
from .indicators import Indicator
from .models import HashAlias

_BATCH = 500
# Cache entries a web process read: kept while it hears events, until the indicator's next answer
# (at most READ_MEMORY_SECONDS).
_REMEMBERED = Memory("indicator")


@dataclass(frozen=True)
class Answer:
    report: dict[str, Any] | None  # VirusTotal's object; None: VirusTotal has never seen it
    source: str  # cache | database | virustotal
    fetched_at: datetime  # when VirusTotal gave it
    latency_ms: int = 0
    # What `outcome` worked out, by VirusTotal type: an answer a process remembers is the same
    # object for every request it answers, so its report is read through once.
    _outcomes: dict[str, scoring.Outcome] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def provider_status(self) -> str:
        return "ok" if self.report is not None else "not_found"

    @property
    def cached(self) -> bool:
        return self.source != "virustotal"

    def outcome(self, vt_type: str) -> scoring.Outcome:
        """The verdict, counts and details of the report (the same objects each time: read-only)."""
        found = self._outcomes.get(vt_type)
        if found is None:
            found = self._outcomes[vt_type] = scoring.outcome(vt_type, self.report, self.provider_status)
        return found


@dataclass(frozen=True)
class Submitted:
    """VirusTotal did not know the URL and is analysing it now."""

    analysis_id: str


def _fresh_seconds(vt_type: str) -> int:
    return current_app.config["LOOKUP_FRESH_SECONDS"][vt_type]


def _cache_ttl(vt_type: str, fetched_at: datetime) -> int:
    """The configured cache time, cut short so a cached answer never outlives its freshness."""
    left = _fresh_seconds(vt_type) - (utcnow() - fetched_at).total_seconds()
    return int(min(current_app.config["LOOKUP_CACHE_SECONDS"][vt_type], left))


def _usable(fetched_at: datetime, vt_type: str, not_before: datetime | None) -> bool:
    if not_before is not None and fetched_at < not_before:
        return False
    return utcnow() - fetched_at <= timedelta(seconds=_fresh_seconds(vt_type))


def local_answers(indicators: Iterable[Indicator], not_before: datetime | None = None) -> dict[Indicator, Answer]:
    """Answers that cost no VirusTotal request, from the cache or a fresh stored report (which is
    put back in the cache). `not_before`: only reports fetched since then count."""
    wanted = list(dict.fromkeys(indicators))
    found: dict[Indicator, Answer] = {}
    started = time.monotonic()
    hits = _cached([ind.cache_key for ind in wanted])
    for ind in wanted:
        hit = hits.get(ind.cache_key)
        if hit is not None and _usable(hit.fetched_at, ind.vt_type, not_before):
            found[ind] = hit
    missing = [ind for ind in wanted if ind not in found]
    if not missing:
        return found
    for ind, row in _stored(missing).items():
        if _usable(row.fetched_at, ind.vt_type, not_before):
            found[ind] = Answer(row.report, "database", row.fetched_at, _ms_since(started))
            entry = {"report": row.report, "fetched_at": row.fetched_at}
            cache.put(ind.cache_key, entry, _cache_ttl(ind.vt_type, row.fetched_at))
    return found


def _cached(keys: list[str]) -> dict[str, Answer]:
    """The cache's answers for `keys` (read-only: the remembered ones are shared by requests)."""
    if not has_request_context():  # a worker's steps: its process need not hear every event
        return _from_cache(keys)
    idents = {key: _ident(key) for key in keys}
    hits = {key: hit for key, ident in idents.items() if (hit := _REMEMBERED.get(ident)) is not None}
    began = _REMEMBERED.reading()
    read = _from_cache([key for key in keys if key not in hits])
    for key, answer in read.items():
        # Answered from this process's memory, it takes no time at all.
        _REMEMBERED.keep(idents[key], replace(answer, latency_ms=0), began)
    return {**hits, **read}


def _from_cache(keys: list[str]) -> dict[str, Answer]:
    started = time.monotonic()
    entries = cache.get_many(keys)
    took = _ms_since(started)
    return {
        key: Answer(entry["report"], "cache", entry["fetched_at"], took)
        for key, entry in entries.items()
        if _well_formed(entry)
    }


def _ident(cache_key: str) -> str:
    # An event names its object after the channel's last colon, and a URL has colons of its own.
    return hashlib.blake2b(cache_key.encode(), digest_size=16).hexdigest()


def _well_formed(hit: Any) -> bool:
    return isinstance(hit, dict) and isinstance(hit.get("fetched_at"), datetime) and "report" in hit


def local_answer(ind: Indicator, not_before: datetime | None = None) -> Answer | None:
    return local_answers([ind], not_before).get(ind)


def current_report(ind: Indicator) -> dict[str, Any] | None:
    """The report we hold for the indicator now, however old: what a finished lookup just used."""
    hit = _cached([ind.cache_key]).get(ind.cache_key)
    if hit is not None and hit.report is not None:
        return hit.report
    row = _stored([ind]).get(ind)
    return row.report if row is not None else None


def _stored(indicators: list[Indicator]) -> dict[Indicator, IndicatorReport]:
    """The stored report of each indicator that has one (md5 and sha1 through their sha256)."""
    keys: dict[Indicator, tuple[str, str]] = {}
    aliases = _sha256_of([ind.value for ind in indicators if ind.type in ("md5", "sha1")])
    for ind in indicators:
        value = aliases.get(ind.value) if ind.type in ("md5", "sha1") else ind.value
        if value is not None:
            keys[ind] = (ind.vt_type, value)
    by_type: dict[str, set[str]] = defaultdict(set)
    for vt_type, value in keys.values():
        by_type[vt_type].add(value)
    rows: dict[tuple[str, str], IndicatorReport] = {}
    for vt_type, values in by_type.items():
        for chunk in _chunks(sorted(values)):
            query = select(IndicatorReport).where(IndicatorReport.type == vt_type, IndicatorReport.value.in_(chunk))
            rows.update(((row.type, row.value), row) for row in db.session.scalars(query))
    return {ind: rows[key] for ind, key in keys.items() if key in rows}


def _sha256_of(hashes: list[str]) -> dict[str, str]:
    """md5/sha1 -> sha256, from the aliases VirusTotal taught us, else from files users uploaded."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(set(hashes))):
        query = select(HashAlias.alias, HashAlias.sha256).where(HashAlias.alias.in_(chunk))
        found.update(db.session.execute(query).tuples().all())
    for column in (File.md5, File.sha1):
        rest = sorted(h for h in hashes if h not in found and len(h) == column.type.length)
        for chunk in _chunks(rest):
            query = select(column, File.sha256).where(column.in_(chunk)).distinct()
            found.update(db.session.execute(query).tuples().all())
    return found


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _BATCH):
        yield values[start : start + _BATCH]


def remember(ind: Indicator, answer: Answer) -> None:
    """Keep what VirusTotal said: the report in the store and the cache, or (never seen) a short
    negative entry in the cache. The caller commits."""
    # Saving a report expires the session's objects; what is pending must reach the database first.
    db.session.flush()
    if answer.report is None:
        value = {"report": None, "fetched_at": answer.fetched_at}
        cache.put(ind.cache_key, value, current_app.config["LOOKUP_NOT_FOUND_SECONDS"])
        _announce([ind.cache_key])
        return
    keys = [ind.cache_key]
    value = ind.value
    if ind.is_hash:
        attributes = answer.report.get("attributes") or {}
        value = str(attributes.get("sha256") or answer.report.get("id") or ind.value).lower()
        _save_aliases(value, [attributes.get("md5"), attributes.get("sha1"), ind.value])
        keys.append(f"vt_file_{value}")
    save_report(ind.vt_type, value, answer.report, answer.fetched_at)
    entry = {"report": answer.report, "fetched_at": answer.fetched_at}
    cache.put_many(dict.fromkeys(keys, entry), _cache_ttl(ind.vt_type, answer.fetched_at))
    _announce(keys)


def _announce(cache_keys: list[str]) -> None:
    """Tell every process's memory that these entries changed (they are in the cache already)."""
    for ident in map(_ident, cache_keys):
        _REMEMBERED.drop(ident)
        publish("indicator", ident)


def _save_aliases(sha256: str, hashes: list[Any]) -> None:
    rows = [
        {"alias": h.lower(), "sha256": sha256, "created_at": utcnow()}
        for h in dict.fromkeys(hashes)
        if isinstance(h, str) and len(h) in (32, 40)
    ]
    if not rows:
        return
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(HashAlias).values(rows)
    db.session.execute(stmt.on_conflict_do_update(index_elements=["alias"], set_={"sha256": stmt.excluded.sha256}))


def fetch(
    user: User, ind: Indicator, *, submit_now: bool = False, on_unknown: Callable[[], None] | None = None
) -> Answer | Submitted:
    """Ask VirusTotal, spending the user's key budget: a report, "never seen" (a hash, domain or
    IP it does not know), or, for a URL it does not know, the analysis it started.

    `submit_now`: an earlier step learnt that VirusTotal does not know this URL; submit it without
    asking again. `on_unknown` is told when a URL turns out unknown, before it is submitted, so
    that a submission left waiting for quota is not preceded by a second lookup: with two tokens
    needed back to back, rows competing for a small budget could otherwise look up forever.

    Raises QuotaExhausted (no budget now), NoActiveApiKey, or the client's VirusTotalError."""

    def ask(client: VirusTotalClient) -> dict[str, Any] | Submitted | None:
        if submit_now and ind.vt_type == "url":
            return Submitted(client.scan_url(ind.value))
        try:
            if ind.vt_type == "file":
                return client.get_file(ind.value)
            if ind.vt_type == "url":
                return client.get_url(ind.value)
            if ind.vt_type == "domain":
                return client.get_domain(ind.value)
            return client.get_ip(ind.value)
        except NotFoundError:
            if ind.vt_type == "url":
                if on_unknown is not None:
                    on_unknown()
                return Submitted(client.scan_url(ind.value))
            return None

    started = time.monotonic()
    result = selection.call(user, ask)
    if isinstance(result, Submitted):
        return result
    return Answer(result, "virustotal", utcnow(), _ms_since(started))


def poll(user: User, ind: Indicator, analysis_id: str) -> Answer | None:
    """The URL's report once VirusTotal's analysis has completed; None while it runs."""
    started = time.monotonic()
    analysis = selection.call(user, lambda client: client.get_analysis(analysis_id))
    data = analysis.get("data") or {}
    if (data.get("attributes") or {}).get("status") != "completed":
        return None
    return Answer(url_object_from_analysis(analysis, ind.value), "virustotal", utcnow(), _ms_since(started))


def url_object_from_analysis(analysis: dict[str, Any], url: str) -> dict[str, Any]:
    """A URL object in the shape of GET /urls/{id}, from a completed analysis: no further request."""
    data, meta = analysis.get("data") or {}, analysis.get("meta") or {}
    attributes, info = data.get("attributes") or {}, meta.get("url_info") or {}
    return {
        "type": "url",
        "id": info.get("id"),
        "attributes": {
            "url": info.get("url") or url,
            "last_analysis_date": attributes.get("date"),
            "last_analysis_stats": attributes.get("stats") or {},
            "last_analysis_results": attributes.get("results") or {},
        },
    }


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

"""Everything the emulator remembers, behind one lock: keys and their quotas, files, URLs,
analyses and their timeline, injected faults and the request log.

This is also the emulator's Python control API; `server.Emulator` adds HTTP on top.
"""

from __future__ import annotations

import base64
import dataclasses
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

from . import engines
from .engines import Verdict
from .objects import (
    Analysis,
    ApiError,
    ContentDigest,
    FileRecord,
    UrlRecord,
    analysis_body,
    canonical_url,
    domain_object,
    file_object,
    ip_object,
    url_object,
    url_sha256,
    valid_domain,
    valid_ip,
)


@dataclass
class EmulatorConfig:
    queued_seconds: float = 3.0  # an analysis is `queued` (no results) this long,
    progress_seconds: float = 7.0  # then `in-progress` (partial results) this long, then `completed`
    minute_seconds: float = 60.0  # the per-minute quota's sliding window
    day_seconds: float = 86400.0  # the per-day quota's window, aligned to the epoch: 00:00 UTC


@dataclass
class Faults:
    """Injected trouble. A faulted request is answered before its key is checked, so it costs no
    quota; the `*_next` counters are deterministic and take precedence over the rates."""

    latency_ms: int = 0  # added to every API request
    transient_rate: float = 0.0  # share of requests answered 503 TransientError
    drop_rate: float = 0.0  # share of requests whose connection is closed without an answer
    transient_next: int = 0  # the next N requests get a 503 TransientError
    drop_next: int = 0  # the next N requests get a dropped connection
    timeout_next: int = 0  # the next N requests are answered only after timeout_seconds
    timeout_seconds: float = 10.0
    error_next: list[dict[str, Any]] = field(default_factory=list)  # [{"status", "code", "message"?}, ...]


@dataclass
class Disruption:
    """What the injected faults do to one request."""

    delay: float = 0.0
    drop: bool = False
    error: ApiError | None = None


class LogEntry(NamedTuple):
    time: float  # time.monotonic()
    key: str | None
    endpoint: str
    status: int  # 0: the connection was dropped without an answer


@dataclass
class _KeyQuota:
    per_minute: int
    per_day: int
    recent: deque[float] = field(default_factory=deque)
    day: int = -1
    day_count: int = 0


def _unique_id(make: Callable[[int | None], str], taken: dict[str, Any]) -> str:
    """make(None) is the id VirusTotal would use; make(n) disambiguates a second analysis of the
    same subject within the same second."""
    candidate, n = make(None), 1
    while candidate in taken:
        candidate, n = make(n), n + 1
    return candidate


class EmulatorState:
    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._initial_config = dataclasses.replace(config or EmulatorConfig())
        self._lock = threading.RLock()
        self._random = random.Random()
        self._generation = 0  # bumped by reset(): requests begun before it are not logged after it
        self._clear()

    def _clear(self) -> None:
        self._config = dataclasses.replace(self._initial_config)
        self._faults = Faults()
        self._keys: dict[str, _KeyQuota] = {}
        self._files: dict[str, FileRecord] = {}
        self._hashes: dict[str, str] = {}  # md5 / sha1 / sha256 -> sha256
        self._urls: dict[str, UrlRecord] = {}
        self._analyses: dict[str, Analysis] = {}
        self._pending: list[Analysis] = []
        self._upload_tokens: set[str] = set()
        self._first_seen: dict[tuple[str, str], int] = {}
        self._log: list[LogEntry] = []

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget keys, files, URLs, analyses, upload URLs, faults and the log; restore the
        configuration the emulator was created with."""
        with self._lock:
            self._clear()
            self._generation += 1

    @property
    def config(self) -> EmulatorConfig:
        with self._lock:
            return dataclasses.replace(self._config)

    def configure(self, **changes: float) -> EmulatorConfig:
        """Change timeline or quota windows, e.g. configure(queued_seconds=0, minute_seconds=2)."""
        with self._lock:
            self._config = dataclasses.replace(self._config, **{k: float(v) for k, v in changes.items()})
            return dataclasses.replace(self._config)

    @property
    def faults(self) -> Faults:
        with self._lock:
            return dataclasses.replace(self._faults, error_next=list(self._faults.error_next))

    def set_faults(
        self,
        latency_ms: int = 0,
        transient_rate: float = 0.0,
        drop_rate: float = 0.0,
        transient_next: int = 0,
        drop_next: int = 0,
        timeout_next: int = 0,
        timeout_seconds: float = 10.0,
        error_next: dict[str, Any] | list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace every fault setting at once; set_faults() turns them all off."""
        if isinstance(error_next, dict):
            error_next = [error_next]
        errors = [dict(spec) for spec in error_next or []]
        for spec in errors:
            if not isinstance(spec.get("status"), int) or not isinstance(spec.get("code"), str):
                raise ValueError("error_next entries need an int status and a str code")
        with self._lock:
            self._faults = Faults(
                int(latency_ms),
                float(transient_rate),
                float(drop_rate),
                int(transient_next),
                int(drop_next),
                int(timeout_next),
                float(timeout_seconds),
                errors,
            )

    def add_key(self, key: str, per_minute: int = 4, per_day: int = 500) -> None:
        with self._lock:
            self._keys[key] = _KeyQuota(int(per_minute), int(per_day))

    def add_file(
        self,
        content: bytes,
        *,
        verdict: Verdict | None = None,
        last_analysis_date: int | None = None,
        name: str | None = None,
    ) -> str:
        """Make a file known as if VirusTotal had analysed it at `last_analysis_date` (default now).
        verdict: "clean", "suspicious", "malicious" or "eicar"; None judges the content like an upload."""
        if verdict is not None and verdict not in engines.VERDICTS:
            raise ValueError(f"verdict must be one of {engines.VERDICTS}")
        digest = ContentDigest()
        digest.write(content)
        date = int(time.time()) if last_analysis_date is None else int(last_analysis_date)
        with self._lock:
            record = self._file_record(digest, verdict or digest.verdict(), date, name)
            if verdict is not None:
                record.verdict = verdict
            record.first_submission_date = min(record.first_submission_date, date)
            record.last_analysis_date = date
            record.last_analysis_results = engines.file_results(record.verdict, record.sha256, date)
            return record.sha256

    def forget_file(self, sha256: str) -> None:
        with self._lock:
            record = self._files.pop(sha256.lower(), None)
            if record is not None:
                for file_hash in (record.md5, record.sha1, record.sha256):
                    self._hashes.pop(file_hash, None)

    def add_url(self, url: str, *, verdict: Verdict | None = None, last_analysis_date: int | None = None) -> str:
        """Make a URL known as if it had been scanned; returns its id (sha256 of the canonical URL)."""
        canonical = canonical_url(url)
        date = int(time.time()) if last_analysis_date is None else int(last_analysis_date)
        with self._lock:
            record = self._url_record(canonical, date)
            record.verdict = verdict or record.verdict
            record.last_analysis_date = date
            record.last_analysis_results = engines.network_results(canonical, record.verdict)
            return record.sha256

    # -- the request log ---------------------------------------------------------------------

    @property
    def log(self) -> list[LogEntry]:
        with self._lock:
            return list(self._log)

    def _entries(self, key: str | None) -> list[LogEntry]:
        with self._lock:
            return [entry for entry in self._log if key is None or entry.key == key]

    def counts(self, key: str | None = None) -> dict[str, int]:
        """Requests per endpoint label, for one key or for all."""
        return dict(Counter(entry.endpoint for entry in self._entries(key)))

    def total(self, key: str | None = None, endpoint: str | None = None) -> int:
        return sum(1 for entry in self._entries(key) if endpoint is None or entry.endpoint == endpoint)

    def statuses(self, key: str | None = None) -> dict[int, int]:
        """Answers per HTTP status (0: dropped connection), e.g. to assert no 429 was ever sent."""
        return dict(Counter(entry.status for entry in self._entries(key)))

    @property
    def generation(self) -> int:
        return self._generation

    def record(self, key: str | None, endpoint: str, status: int, generation: int | None = None) -> None:
        """Log one answered request; one that began before the last reset() (a delayed answer)
        is left out, so it cannot leak into the next test's counts."""
        with self._lock:
            if generation is None or generation == self._generation:
                self._log.append(LogEntry(time.monotonic(), key, endpoint, status))

    # -- admission: faults, keys, quotas -------------------------------------------------------

    def disruption(self) -> Disruption:
        with self._lock:
            faults = self._faults
            result = Disruption(delay=faults.latency_ms / 1000)
            if faults.error_next:
                spec = faults.error_next.pop(0)
                message = spec.get("message") or f"Emulated {spec['code']}"
                result.error = ApiError(spec["status"], spec["code"], message)
            elif faults.drop_next:
                faults.drop_next -= 1
                result.drop = True
            elif faults.transient_next:
                faults.transient_next -= 1
                result.error = _transient()
            elif faults.timeout_next:
                faults.timeout_next -= 1
                result.delay += faults.timeout_seconds
            elif self._random.random() < faults.drop_rate:
                result.drop = True
            elif self._random.random() < faults.transient_rate:
                result.error = _transient()
            return result

    def authorize(self, key: str | None) -> None:
        """Check the key and take one request from its quotas; raises the 401 or 429 answer."""
        if not key:
            raise ApiError(401, "AuthenticationRequiredError", "X-Apikey header is missing")
        with self._lock:
            quota = self._keys.get(key)
            if quota is None:
                raise ApiError(401, "WrongCredentialsError", "Wrong API key")
            now = time.monotonic()
            while quota.recent and quota.recent[0] <= now - self._config.minute_seconds:
                quota.recent.popleft()
            day = int(time.time() // self._config.day_seconds)
            if quota.day != day:
                quota.day, quota.day_count = day, 0
            if len(quota.recent) >= quota.per_minute or quota.day_count >= quota.per_day:
                raise ApiError(429, "QuotaExceededError", "Quota exceeded")
            quota.recent.append(now)
            quota.day_count += 1

    # -- files and analyses ------------------------------------------------------------------

    def _file_record(self, digest: ContentDigest, verdict: Verdict, date: int, name: str | None) -> FileRecord:
        record = self._files.get(digest.sha256)
        if record is None:
            record = FileRecord.from_digest(digest, verdict, date)
            self._files[record.sha256] = record
            for file_hash in (record.md5, record.sha1, record.sha256):
                self._hashes[file_hash] = record.sha256
        if name and name not in record.names:
            record.names.append(name)
        return record

    def submit_file(self, digest: ContentDigest, filename: str | None) -> str:
        """An upload: the file is submitted and a new analysis starts; returns its id."""
        now = int(time.time())
        with self._lock:
            known = digest.sha256 in self._files
            record = self._file_record(digest, digest.verdict(), now, filename)
            if known:
                record.times_submitted += 1
                record.last_submission_date = now
            return self._start_file_analysis(record, now)

    def rescan(self, file_hash: str) -> str:
        with self._lock:
            return self._start_file_analysis(self._known_file(file_hash), int(time.time()))

    def _start_file_analysis(self, record: FileRecord, date: int) -> str:
        analysis_id = _unique_id(
            lambda n: base64.b64encode(f"{record.md5}:{date}{'' if n is None else f':{n}'}".encode()).decode(),
            self._analyses,
        )
        results = engines.file_results(record.verdict, record.sha256, date)
        return self._start(Analysis(analysis_id, "file", record.sha256, date, time.monotonic(), results))

    def _start(self, analysis: Analysis) -> str:
        self._analyses[analysis.id] = analysis
        self._pending.append(analysis)
        return analysis.id

    def new_upload_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._upload_tokens.add(token)
        return token

    def consume_upload_token(self, token: str) -> None:
        with self._lock:
            if token not in self._upload_tokens:
                raise ApiError(404, "NotFoundError", "Upload URL not found or already used")
            self._upload_tokens.discard(token)

    def _phase(self, analysis: Analysis, now: float) -> tuple[str, float]:
        """(status, share of engines done)."""
        elapsed = now - analysis.started
        queued, progress = self._config.queued_seconds, self._config.progress_seconds
        if analysis.completed or elapsed >= queued + progress:
            return "completed", 1.0
        if elapsed < queued:
            return "queued", 0.0
        return "in-progress", (elapsed - queued) / progress

    def _settle(self) -> float:
        """Complete every analysis whose time has come, so its file or URL becomes known."""
        now = time.monotonic()
        for analysis in list(self._pending):
            if self._phase(analysis, now)[0] == "completed":
                self._pending.remove(analysis)
                analysis.completed = True
                subjects: dict[str, Any] = self._files if analysis.kind == "file" else self._urls
                record = subjects.get(analysis.subject)
                if record is not None and (record.last_analysis_date or 0) <= analysis.date:
                    record.last_analysis_date = analysis.date
                    record.last_analysis_results = analysis.results
        return now

    def _known_file(self, file_hash: str) -> FileRecord:
        record = self._files.get(self._hashes.get(file_hash.lower(), ""))
        if record is None or not record.known:
            raise ApiError(404, "NotFoundError", f'File "{file_hash}" not found')
        return record

    def file_body(self, file_hash: str, base: str) -> dict[str, Any]:
        with self._lock:
            self._settle()
            return file_object(self._known_file(file_hash), base)

    def analysis_body(self, analysis_id: str, base: str) -> dict[str, Any]:
        with self._lock:
            now = self._settle()
            analysis = self._analysis(analysis_id)
            status, done = self._phase(analysis, now)
            results = analysis.results
            if status == "queued":
                results = {}
            elif status == "in-progress":
                # Engines answer one by one; "in progress" means at least one has.
                results = dict(islice(results.items(), max(1, int(done * len(results)))))
            return analysis_body(analysis, status, results, self._meta(analysis), base)

    def analysis_item(self, analysis_id: str, base: str) -> dict[str, Any]:
        with self._lock:
            self._settle()
            analysis = self._analysis(analysis_id)
            if analysis.kind == "file":
                return file_object(self._known_file(analysis.subject), base)
            return url_object(self._known_url(analysis.subject), base)

    def _analysis(self, analysis_id: str) -> Analysis:
        analysis = self._analyses.get(analysis_id)
        if analysis is None:
            raise ApiError(404, "NotFoundError", f'Analysis "{analysis_id}" not found')
        return analysis

    def _meta(self, analysis: Analysis) -> dict[str, Any]:
        if analysis.kind == "file":
            record = self._files.get(analysis.subject)
            return {"file_info": record.info() if record else {"sha256": analysis.subject}}
        url = self._urls.get(analysis.subject)
        return {"url_info": {"id": analysis.subject, "url": url.url if url else None}}

    # -- URLs, domains, IP addresses -------------------------------------------------------

    def _url_record(self, canonical: str, date: int) -> UrlRecord:
        sha256 = url_sha256(canonical)
        record = self._urls.get(sha256)
        if record is None:
            record = UrlRecord(canonical, sha256, engines.network_verdict(canonical), date, date, times_submitted=0)
            self._urls[sha256] = record
        return record

    def submit_url(self, url: str) -> str:
        canonical = canonical_url(url)
        now = int(time.time())
        with self._lock:
            record = self._url_record(canonical, now)
            record.times_submitted += 1
            record.last_submission_date = now
            analysis_id = _unique_id(
                lambda n: f"u-{record.sha256}-{now}{'' if n is None else f'-{n}'}",
                self._analyses,
            )
            results = engines.network_results(canonical, record.verdict)
            return self._start(Analysis(analysis_id, "url", record.sha256, now, time.monotonic(), results))

    def _known_url(self, sha256: str) -> UrlRecord:
        record = self._urls.get(sha256)
        if record is None or not record.known:
            raise ApiError(404, "NotFoundError", f'URL "{sha256}" not found')
        return record

    def url_body(self, identifier: str, base: str) -> dict[str, Any]:
        """GET /urls/{id}: the id is the sha256 of the canonical URL or the URL in unpadded
        URL-safe base64."""
        sha256 = identifier.lower()
        if not (len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)):
            try:
                url = base64.urlsafe_b64decode(identifier + "=" * (-len(identifier) % 4)).decode()
                sha256 = url_sha256(canonical_url(url))
            except (ValueError, ApiError):
                raise ApiError(404, "NotFoundError", f'URL "{identifier}" not found') from None
        with self._lock:
            self._settle()
            return url_object(self._known_url(sha256), base)

    def _first_seen_date(self, kind: str, value: str) -> int:
        # A stable last_analysis_date for values the emulator never analysed: some hours ago.
        hours = engines.roll(kind, value)
        return self._first_seen.setdefault((kind, value), int(time.time()) - 3600 * (1 + hours))

    def domain_body(self, domain: str, base: str) -> dict[str, Any]:
        domain = domain.lower().rstrip(".")
        if not valid_domain(domain):
            raise ApiError(400, "InvalidArgumentError", f'Domain "{domain}" is not a valid domain pattern')
        with self._lock:
            return domain_object(domain, self._first_seen_date("domain", domain), base)

    def ip_body(self, ip: str, base: str) -> dict[str, Any]:
        if not valid_ip(ip):
            raise ApiError(400, "InvalidArgumentError", f'"{ip}" is not a valid IP address')
        with self._lock:
            return ip_object(ip, self._first_seen_date("ip", ip), base)


def _transient() -> ApiError:
    return ApiError(503, "TransientError", "Transient error, please retry")

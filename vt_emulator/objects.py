"""What the emulator knows about files and URLs, and how it renders VirusTotal's JSON objects."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from . import engines
from .engines import Verdict


class ApiError(Exception):
    """An answer in VirusTotal's error envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


class ContentDigest(io.RawIOBase):
    """A write-only sink that hashes and classifies content as it streams past, keeping only the
    first bytes: uploads of any size cost constant memory and no temporary files."""

    HEAD_BYTES = 512

    def __init__(self) -> None:
        super().__init__()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.has_marker = False
        self._tail = b""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        data = bytes(data)
        self._md5.update(data)
        self._sha1.update(data)
        self._sha256.update(data)
        self.size += len(data)
        if len(self.head) < self.HEAD_BYTES:
            self.head = (self.head + data[: self.HEAD_BYTES])[: self.HEAD_BYTES]
        if not self.has_marker:
            # The tail of earlier writes catches a marker split across two writes.
            marker, keep = engines.SUSPICIOUS_MARKER, len(engines.SUSPICIOUS_MARKER) - 1
            self.has_marker = marker in self._tail + data[:keep] or marker in data
            self._tail = (self._tail + data[-keep:])[-keep:]
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        # werkzeug rewinds each file part once it is complete; there is nothing to rewind.
        return 0

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    @property
    def sha1(self) -> str:
        return self._sha1.hexdigest()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def verdict(self) -> Verdict:
        return engines.classify(self.head, self.size, self.has_marker)


@dataclass
class FileRecord:
    sha256: str
    sha1: str
    md5: str
    size: int
    verdict: Verdict
    type_description: str
    type_tag: str
    first_submission_date: int
    last_submission_date: int
    times_submitted: int = 1
    names: list[str] = field(default_factory=list)
    last_analysis_date: int | None = None
    last_analysis_results: dict[str, Any] | None = None

    @property
    def known(self) -> bool:
        """VirusTotal answers GET /files for a file once a first analysis has completed."""
        return self.last_analysis_date is not None

    @classmethod
    def from_digest(cls, digest: ContentDigest, verdict: Verdict, date: int) -> FileRecord:
        description, tag = engines.file_type(digest.head)
        return cls(
            digest.sha256,
            digest.sha1,
            digest.md5,
            digest.size,
            verdict,
            description,
            tag,
            first_submission_date=date,
            last_submission_date=date,
        )

    def info(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "sha1": self.sha1, "md5": self.md5, "size": self.size}


@dataclass
class Analysis:
    id: str
    kind: Literal["file", "url"]
    subject: str  # sha256 of the file or of the canonical URL
    date: int
    started: float  # monotonic clock, drives the queued -> in-progress -> completed timeline
    results: dict[str, Any]  # what the engines say once the analysis completes
    completed: bool = False


@dataclass
class UrlRecord:
    url: str
    sha256: str
    verdict: Verdict
    first_submission_date: int
    last_submission_date: int
    times_submitted: int = 1
    last_analysis_date: int | None = None
    last_analysis_results: dict[str, Any] | None = None

    @property
    def known(self) -> bool:
        return self.last_analysis_date is not None


def canonical_url(url: str) -> str:
    """The URL the way VirusTotal identifies it: scheme and host lowercased, an empty path made
    `/`, the fragment dropped, `http://` assumed when no scheme is given."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https", "ftp") or not parts.hostname or " " in url:
        raise ApiError(400, "InvalidArgumentError", "Invalid URL")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def url_sha256(canonical: str) -> str:
    return hashlib.sha256(canonical.encode()).hexdigest()


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


def valid_domain(value: str) -> bool:
    return bool(_DOMAIN.match(value.lower()))


def valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _number(value: str, salt: str, modulo: int) -> int:
    digest = hashlib.sha256(f"{salt}:{value}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % modulo


def _pick(options: tuple[Any, ...], value: str, salt: str) -> Any:
    return options[_number(value, salt, len(options))]


def _analysis_attributes(
    results: dict[str, Any] | None, date: int | None, categories: tuple[str, ...]
) -> dict[str, Any]:
    if results is None:
        return {}
    return {
        "last_analysis_date": date,
        "last_analysis_stats": engines.stats(results, categories),
        "last_analysis_results": results,
    }


def _reputation(results: dict[str, Any] | None) -> int:
    if not results:
        return 0
    return -sum(1 for result in results.values() if result["category"] == "malicious")


def _object(kind: str, object_id: str, self_link: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "id": object_id, "links": {"self": self_link}, "attributes": attributes}


def file_object(record: FileRecord, base: str) -> dict[str, Any]:
    attributes = {
        **record.info(),
        "type_description": record.type_description,
        "type_tag": record.type_tag,
        "meaningful_name": record.names[0] if record.names else record.sha256,
        "names": list(record.names),
        "tags": [record.type_tag] if record.type_tag != "unknown" else [],
        "reputation": _reputation(record.last_analysis_results),
        "total_votes": {"harmless": 0, "malicious": 0},
        "times_submitted": record.times_submitted,
        "first_submission_date": record.first_submission_date,
        "last_submission_date": record.last_submission_date,
        **_analysis_attributes(record.last_analysis_results, record.last_analysis_date, engines.FILE_CATEGORIES),
    }
    return _object("file", record.sha256, f"{base}/files/{record.sha256}", attributes)


def url_object(record: UrlRecord, base: str) -> dict[str, Any]:
    host = urlsplit(record.url).hostname or ""
    attributes = {
        "url": record.url,
        "last_final_url": record.url,
        "title": host,
        "last_http_response_code": 200,
        "tags": [],
        "reputation": _reputation(record.last_analysis_results),
        "total_votes": {"harmless": 0, "malicious": 0},
        "times_submitted": record.times_submitted,
        "first_submission_date": record.first_submission_date,
        "last_submission_date": record.last_submission_date,
        **_analysis_attributes(record.last_analysis_results, record.last_analysis_date, engines.NETWORK_CATEGORIES),
    }
    return _object("url", record.sha256, f"{base}/urls/{record.sha256}", attributes)


_REGISTRARS = ("MarkMonitor Inc.", "GoDaddy.com, LLC", "NameCheap, Inc.", "Gandi SAS", "Tucows Domains Inc.")
_DOMAIN_CATEGORIES = ("information technology", "business", "news and media", "search engines and portals")
_AS_OWNERS = (
    (15169, "GOOGLE", "US"),
    (13335, "CLOUDFLARENET", "US"),
    (16509, "AMAZON-02", "US"),
    (8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "US"),
    (24940, "Hetzner Online GmbH", "DE"),
    (16276, "OVH SAS", "FR"),
)
_KNOWN_IPS = {
    "8.8.8.8": (15169, "GOOGLE", "US"),
    "8.8.4.4": (15169, "GOOGLE", "US"),
    "1.1.1.1": (13335, "CLOUDFLARENET", "AU"),
}


def _derived_ipv4(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return f"{11 + digest[0] % 180}.{digest[1]}.{digest[2]}.{1 + digest[3] % 254}"


def domain_object(domain: str, date: int, base: str) -> dict[str, Any]:
    results = engines.network_results(domain)
    category = "phishing" if "phish" in domain else _pick(_DOMAIN_CATEGORIES, domain, "category")
    attributes = {
        "registrar": _pick(_REGISTRARS, domain, "registrar"),
        "categories": {"Forcepoint ThreatSeeker": category, "alphaMountain.ai": category.title()},
        "last_dns_records": [
            {"type": "A", "ttl": 300, "value": _derived_ipv4(domain)},
            {"type": "NS", "ttl": 21600, "value": f"ns1.{domain}"},
        ],
        "tld": domain.rsplit(".", 1)[-1],
        "creation_date": date - 86400 * (365 + _number(domain, "age", 3650)),
        "reputation": _reputation(results),
        "tags": [],
        "total_votes": {"harmless": 0, "malicious": 0},
        **_analysis_attributes(results, date, engines.NETWORK_CATEGORIES),
    }
    return _object("domain", domain, f"{base}/domains/{domain}", attributes)


def ip_object(ip: str, date: int, base: str) -> dict[str, Any]:
    results = engines.network_results(ip)
    address = ipaddress.ip_address(ip)
    asn, owner, country = _KNOWN_IPS.get(ip) or _pick(_AS_OWNERS, ip, "asn")
    network = ipaddress.ip_network(f"{ip}/{24 if address.version == 4 else 48}", strict=False)
    attributes = {
        "asn": asn,
        "as_owner": owner,
        "country": country,
        "network": str(network),
        "reputation": _reputation(results),
        "tags": [],
        "total_votes": {"harmless": 0, "malicious": 0},
        **_analysis_attributes(results, date, engines.NETWORK_CATEGORIES),
    }
    return _object("ip_address", ip, f"{base}/ip_addresses/{ip}", attributes)


def analysis_body(
    analysis: Analysis, status: str, results: dict[str, Any], meta: dict[str, Any], base: str
) -> dict[str, Any]:
    """GET /analyses/{id}: `data` plus the `meta` describing the file or URL."""
    categories = engines.FILE_CATEGORIES if analysis.kind == "file" else engines.NETWORK_CATEGORIES
    collection = "files" if analysis.kind == "file" else "urls"
    data = {
        "type": "analysis",
        "id": analysis.id,
        "links": {"self": f"{base}/analyses/{analysis.id}", "item": f"{base}/{collection}/{analysis.subject}"},
        "attributes": {
            "status": status,
            "date": analysis.date,
            "stats": engines.stats(results, categories),
            "results": results,
        },
    }
    return {"data": data, "meta": meta}

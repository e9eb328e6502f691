"""An indicator's verdict, 0-100 score and one-line explanation, from what VirusTotal said.

The rule
--------
Only a usable report scores. When VirusTotal gave none (it never saw the hash, the lookup is waiting
for quota or for an analysis, or VirusTotal refused), or when no engine gave a verdict (every one
timed out, failed or does not handle the type), the verdict is `unknown` and the score is null:
silence is not evidence of safety, and a rate-limited answer never becomes a verdict.

Otherwise, with m malicious, s suspicious, h harmless and u undetected engines (n = m + s + h + u,
the engines that judged it; timeouts and failures are left out, as in the scan reports):

| verdict      | when                       | score                                   |
|--------------|----------------------------|-----------------------------------------|
| `malicious`  | m >= 1                     | 50 + min(50, round(100 * m / n))        |
| `suspicious` | m == 0 and s >= 1          | 20 + min(29, round(100 * s / n))        |
| `clean`      | m == 0 and s == 0          | min(19, max(0, -reputation))            |

The verdict is the one file scans use (`results.report.verdict`), so a hash looked up and the
same file scanned never disagree. The score ranks within the verdict: its band says the verdict
(clean 0-19, suspicious 20-49, malicious 50-100) and its place in the band how many engines
agree (half of them flagging it is the top of the malicious band). VirusTotal's community
`reputation` only lifts a clean indicator within the clean band: votes alone never make a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..scans.results.report import verdict as engines_verdict

VERDICTS = ("malicious", "suspicious", "clean", "unknown")
EVIDENCE_LIMIT = 20
GUI = "https://www.virustotal.com/gui"
_GUI_KIND = {"file": "file", "url": "url", "domain": "domain", "ip": "ip-address"}
_UNKNOWN = {
    "not_found": "VirusTotal has never seen it",
    "rate_limited": "No VirusTotal quota left right now; the lookup finishes as soon as the key's budget frees",
    "pending": "VirusTotal is analysing it; the lookup finishes when the analysis completes",
    "error": "VirusTotal could not answer",
}
# Attributes worth showing next to the verdict, per VirusTotal object type.
_DETAILS = {
    "file": ("meaningful_name", "type_description", "size", "md5", "sha1", "sha256", "times_submitted", "tags"),
    "url": ("url", "last_final_url", "title", "last_http_response_code", "tags"),
    "domain": ("registrar", "categories", "creation_date", "tags"),
    "ip": ("asn", "as_owner", "country", "network", "tags"),
}


@dataclass(frozen=True)
class Counts:
    malicious: int
    suspicious: int
    harmless: int
    undetected: int
    reputation: int | None

    @property
    def judged(self) -> int:
        return self.malicious + self.suspicious + self.harmless + self.undetected


@dataclass(frozen=True)
class Summary:
    verdict: str
    score: int | None
    explanation: str


def _attributes(report: dict[str, Any] | None) -> dict[str, Any]:
    return (report or {}).get("attributes") or {}


def counts(report: dict[str, Any] | None) -> Counts | None:
    """Engine counts of a VirusTotal object (file, URL, domain or IP); None without a report."""
    if report is None:
        return None
    attributes = _attributes(report)
    stats = attributes.get("last_analysis_stats") or {}
    reputation = attributes.get("reputation")
    return Counts(
        malicious=int(stats.get("malicious") or 0),
        suspicious=int(stats.get("suspicious") or 0),
        harmless=int(stats.get("harmless") or 0),
        undetected=int(stats.get("undetected") or 0),
        reputation=int(reputation) if isinstance(reputation, int | float) else None,
    )


def summarize(report: dict[str, Any] | None, provider_status: str) -> Summary:
    """The summary for VirusTotal's answer: `report` is its object when `provider_status` is ok."""
    found = counts(report) if provider_status == "ok" else None
    if found is None:
        return Summary("unknown", None, _UNKNOWN.get(provider_status, _UNKNOWN["error"]))
    n = found.judged
    if n == 0:
        return Summary("unknown", None, "VirusTotal has a report, but no engine gave a verdict")
    verdict = engines_verdict("completed", found.malicious, found.suspicious, found.undetected, found.harmless)
    if verdict == "malicious":
        text = f"{found.malicious} of {n} engines flag it as malicious"
        if found.suspicious:
            text += f" and {found.suspicious} as suspicious"
        return Summary(verdict, 50 + min(50, round(100 * found.malicious / n)), text)
    if verdict == "suspicious":
        text = f"No engine flags it as malicious; {found.suspicious} of {n} find it suspicious"
        return Summary(verdict, 20 + min(29, round(100 * found.suspicious / n)), text)
    reputation = found.reputation or 0
    text = f"None of {n} engines flags it"
    if reputation < 0:
        text += f", though its community reputation is {reputation}"
    return Summary("clean", min(19, max(0, -reputation)), text)


def evidence(report: dict[str, Any] | None, limit: int = EVIDENCE_LIMIT) -> list[dict[str, Any]]:
    """The engines that flag it, malicious first: what an analyst reads to judge the verdict."""
    results = _attributes(report).get("last_analysis_results") or {}
    flagged = [
        {"engine": str(v.get("engine_name") or name), "category": v.get("category"), "result": v.get("result")}
        for name, v in results.items()
        if isinstance(v, dict) and v.get("category") in ("malicious", "suspicious")
    ]
    flagged.sort(key=lambda e: (e["category"] != "malicious", e["engine"].lower()))
    return flagged[:limit]


def details(vt_type: str, report: dict[str, Any] | None) -> dict[str, Any]:
    """Evidence, context attributes, dates and the permalink, kept with a finished lookup."""
    attributes = _attributes(report)
    return {
        "evidence": evidence(report),
        "context": {name: attributes[name] for name in _DETAILS.get(vt_type, ()) if name in attributes},
        "last_analysis_date": attributes.get("last_analysis_date"),
        "permalink": permalink(vt_type, report),
    }


@dataclass(frozen=True)
class Outcome:
    """All a finished row keeps from a report: its summary, counts and details."""

    summary: Summary
    counts: Counts | None
    details: dict[str, Any]


def outcome(vt_type: str, report: dict[str, Any] | None, provider_status: str) -> Outcome:
    return Outcome(summarize(report, provider_status), counts(report), details(vt_type, report))


def permalink(vt_type: str, report: dict[str, Any] | None) -> str | None:
    object_id = (report or {}).get("id")
    return f"{GUI}/{_GUI_KIND[vt_type]}/{object_id}" if object_id else None

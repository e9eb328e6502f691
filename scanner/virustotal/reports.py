"""Pure helpers over VirusTotal identifiers and report bodies; no I/O."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

FILE_CATEGORIES = (
    "harmless",
    "malicious",
    "suspicious",
    "undetected",
    "timeout",
    "type-unsupported",
    "failure",
    "confirmed-timeout",
)
NETWORK_CATEGORIES = ("harmless", "malicious", "suspicious", "undetected", "timeout")

# Categories in which an engine actually judged the sample; the rest mean "no opinion".
VERDICT_CATEGORIES = ("harmless", "malicious", "suspicious", "undetected")


def url_id(url: str) -> str:
    """The identifier of a URL for GET /urls/{id}: URL-safe base64 without `=` padding."""
    return base64.urlsafe_b64encode(url.encode()).decode().strip("=")


def parse_stats(attributes: Mapping[str, Any]) -> dict[str, int]:
    """All eight file categories as ints, from an object's attributes.

    Reads `last_analysis_stats` (file, URL, domain, IP objects) or, failing that, `stats` (an
    analysis). Missing categories count 0: older reports lack `confirmed-timeout`, and URL,
    domain and IP reports have only five keys.
    """
    stats = attributes.get("last_analysis_stats")
    if stats is None:
        stats = attributes.get("stats")
    stats = stats or {}
    return {category: int(stats.get(category) or 0) for category in FILE_CATEGORIES}


def detection_ratio(stats: Mapping[str, int]) -> tuple[int, int]:
    """(malicious, engines that gave a verdict): the denominator counts harmless, malicious,
    suspicious and undetected, and leaves out timeouts, failures and unsupported types."""
    judged = sum(int(stats.get(category) or 0) for category in VERDICT_CATEGORIES)
    return int(stats.get("malicious") or 0), judged

"""VirusTotal API v3: the HTTP client, its typed errors and helpers over report bodies."""

from .client import VirusTotalClient
from .errors import VirusTotalError
from .reports import detection_ratio, parse_stats, url_id

__all__ = ["VirusTotalClient", "VirusTotalError", "detection_ratio", "parse_stats", "url_id"]

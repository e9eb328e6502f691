"""What a history read asks for, validated: shared by the request schemas that make it and the
services that answer it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ...request_args import SortKey

SORT_KEYS = ("scan_date", "detection_ratio", "created_at", "filename")


@dataclass(frozen=True)
class HistoryQuery:
    """Validated history filters. `date_before` is exclusive; None means no bound."""

    statuses: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    detection_min: int | None = None
    detection_max: int | None = None
    date_from: datetime | None = None
    date_before: datetime | None = None
    filename: str | None = None
    hash_prefix: str | None = None
    sort: tuple[SortKey, ...] = (SortKey("scan_date", True),)
    page: int = 1
    per_page: int = 10

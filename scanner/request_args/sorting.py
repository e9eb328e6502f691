"""The `sort_by` parameter the histories share (seed 003): one key, or several keys with
directions, `detection_ratio:desc,scan_date:asc`, each from the endpoint's allowlist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class SortKey(NamedTuple):
    name: str
    descending: bool


def parse_sort(sort_by: str, allowed: Sequence[str], default_order: str = "desc") -> tuple[SortKey, ...]:
    """A key without a direction takes `default_order`. Raises ValueError naming the problem."""
    keys: list[SortKey] = []
    for part in sort_by.split(","):
        name, _, order = (piece.strip() for piece in part.partition(":"))
        if name not in allowed:
            raise ValueError(f"Unknown sort key {name!r}; allowed: {', '.join(allowed)}")
        if order not in ("", "asc", "desc"):
            raise ValueError(f"Sort direction for {name!r} must be asc or desc, not {order!r}")
        if any(key.name == name for key in keys):
            raise ValueError(f"Sort key {name!r} is given twice")
        keys.append(SortKey(name, (order or default_order) == "desc"))
    return tuple(keys)


def sort_pattern(allowed: Sequence[str]) -> str:
    """The `sort_by` values `parse_sort` reads, as a regular expression for the OpenAPI document:
    keys from `allowed` with an optional direction, comma-separated, none twice. Each key is
    followed only by the keys not yet used, which spells "none twice" without a lookaround
    (that generators of matching text handle badly)."""
    return f"^{_keys_after(tuple(allowed))}$"


def _keys_after(left: tuple[str, ...]) -> str:
    branches = []
    for key in left:
        rest = tuple(other for other in left if other != key)
        more = f"(?:,{_keys_after(rest)})?" if rest else ""
        branches.append(f"{key}(?::(?:asc|desc))?{more}")
    return f"(?:{'|'.join(branches)})"

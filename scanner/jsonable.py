"""Rows as plain data for the API and the exports: what json.dumps cannot write on its own,
written the way the API's schemas write it, and a row's columns picked by name."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def attributes(row: Any, *names: str, **renamed: str) -> dict[str, Any]:
    """`{name: row.name}` for each of `names`, then `{key: row.column}` for each `key=column`, in
    that order: the columns a presenter hands on as they are, beside the ones it works out."""
    return {**{name: getattr(row, name) for name in names}, **{k: getattr(row, c) for k, c in renamed.items()}}


def json_default(value: Any) -> str:
    """For `json.dumps(..., default=json_default)`: dates in ISO 8601 with the `T`, as every
    date in a JSON answer is; ids and anything else as their text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)

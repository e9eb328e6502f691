"""What json.dumps cannot write on its own, written the way the API's schemas write it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def json_default(value: Any) -> str:
    """For `json.dumps(..., default=json_default)`: dates in ISO 8601 with the `T`, as every
    date in a JSON answer is; ids and anything else as their text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)

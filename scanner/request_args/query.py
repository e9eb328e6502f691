"""Query-string fields the histories share: ISO dates and date ranges, comma-separated lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import ValidationError, fields

from .sorting import parse_sort

_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


class DateOrDateTime(fields.Field):
    """An ISO 8601 date or date-time; no time zone means UTC. Loads as (aware datetime, date_only)."""

    default_error_messages = {
        "invalid": "Not a valid ISO 8601 date or date-time.",
        "range": "Date out of range.",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> tuple[datetime, bool]:
        text = str(value).strip()
        try:
            if len(text) == 10:
                instant, date_only = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC), True
            else:
                parsed = datetime.fromisoformat(text)
                instant = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
                date_only = False
        except ValueError:
            raise self.make_error("invalid") from None
        except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
            raise self.make_error("range") from None
        if instant > _LATEST:  # the exclusive end of date_to (a day later) must still be a datetime
            raise self.make_error("range")
        return instant, date_only


def exclusive_end(date_to: tuple[datetime, bool]) -> datetime:
    """Past the whole day for a bare date, just past the instant for a date-time."""
    instant, date_only = date_to
    return instant + (timedelta(days=1) if date_only else timedelta(microseconds=1))


def check_history_args(data: dict[str, Any], sort_keys: tuple[str, ...]) -> None:
    """What a history's query arguments must agree on beyond each field: `date_from` not after
    `date_to`, and a `sort_by` of known keys (checked when `sort_order` is valid too)."""
    start, end = data.get("date_from"), data.get("date_to")
    if start and end and start[0] >= exclusive_end(end):
        raise ValidationError("date_from is after date_to", "date_from")
    if "sort_by" in data and "sort_order" in data:
        try:
            parse_sort(data["sort_by"], sort_keys, data["sort_order"])
        except ValueError as error:
            raise ValidationError(str(error), "sort_by") from None


def split(value: str | None) -> tuple[str, ...]:
    """`a, b,,a` -> ("a", "b"): blanks dropped, repeats once, order kept."""
    return tuple(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


def comma_list(allowed: tuple[str, ...]) -> Callable[[str], None]:
    """A validator: one or more of `allowed`, comma-separated."""

    def check(value: str) -> None:
        values = split(value)
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise ValidationError(f"Unknown value {', '.join(unknown) or value!r}; allowed: {', '.join(allowed)}")

    return check

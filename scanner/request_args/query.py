"""Query-string fields the histories share: ISO dates and date ranges, comma-separated lists, and
the multi-key `sort_by`, each documented as narrowly as it is read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from marshmallow import ValidationError, fields

from .sorting import parse_sort, sort_pattern

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


class DateOrDateTime(fields.Field):
    """An ISO 8601 date or date-time; no time zone means UTC. Loads as (aware datetime, date_only).

    Every date-time RFC 3339 can write is read: one whose UTC instant falls before year 1 or in the
    last day of year 9999 is moved to the nearest instant a bound can hold, which selects the same
    rows (nothing was scanned or looked up then)."""

    default_error_messages = {"invalid": "Not a valid ISO 8601 date or date-time."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"type": "string", "format": "date-time", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> tuple[datetime, bool]:
        text = str(value).strip()
        try:
            if len(text) == 10:
                instant, date_only = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC), True
            else:
                parsed = datetime.fromisoformat(text)
                instant = _utc(parsed)
                date_only = False
        except ValueError:
            raise self.make_error("invalid") from None
        # The exclusive end of date_to (a day later) must still be a datetime.
        return min(instant, _LATEST), date_only


def _utc(parsed: datetime) -> datetime:
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC, 9999-12-31T23:00-02:00 after 9999
        return _EARLIEST if parsed.year == 1 else _LATEST


def exclusive_end(date_to: tuple[datetime, bool]) -> datetime:
    """Past the whole day for a bare date, just past the instant for a date-time."""
    instant, date_only = date_to
    return instant + (timedelta(days=1) if date_only else timedelta(microseconds=1))


def check_history_args(data: dict[str, Any], sort_keys: tuple[str, ...]) -> None:
    """What a history's query arguments must agree on beyond each field: a `sort_by` of known keys
    (checked when `sort_order` is valid too). A date range that ends before it starts is not an
    error: it selects nothing, as any filter no row matches."""
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


class CommaList(fields.String):
    """One or more of `allowed`, comma-separated (`status=pending,failed`); blanks and repeats are
    dropped. Documented as the array OpenAPI writes that way (style form, not exploded; the
    request_args.openapi plugin sets both), so a client or a generator sees the allowed values."""

    def __init__(self, allowed: tuple[str, ...], **kwargs: Any) -> None:
        documented = {"type": "array", "items": {"type": "string", "enum": list(allowed)}, "minItems": 1}
        kwargs["metadata"] = {**documented, **kwargs.get("metadata", {})}
        super().__init__(validate=comma_list(allowed), **kwargs)


class SortBy(fields.String):
    """`sort_by`: one key of `keys`, or several with directions, each key once; the pattern says so."""

    def __init__(self, keys: tuple[str, ...], default: str, **kwargs: Any) -> None:
        kwargs["metadata"] = {"pattern": sort_pattern(keys), **kwargs.get("metadata", {})}
        super().__init__(load_default=default, **kwargs)

"""Identifiers taken from URLs."""

from __future__ import annotations

import functools
import re
import uuid

from werkzeug.routing import BaseConverter, Map

from ..errors import ValidationFailed


def parse_uuid(value: str, what: str = "ID") -> uuid.UUID:
    """Seed 001 answers a malformed id with 400, not 404."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed(f"Invalid {what} format: expected a UUID", details={"value": str(value)[:64]}) from None


class IdConverter(BaseConverter):
    """`<id:key_id>`: a UUID in a URL path, documented as one (`format: uuid`).

    The value reaches the view as text and `parse_uuid` reads it, so a malformed id is answered
    with 400 as seed 001 asks, not with routing's 404. Words named as arguments are sibling routes
    at the same level, never ids: `<id("validate"):key_id>` keeps `/api/keys/validate` from also
    matching `/api/keys/<key_id>` and so advertising that route's methods.
    """

    regex = "[^/]+"

    def __init__(self, map: Map, *siblings: str) -> None:
        super().__init__(map)
        if siblings:
            words = "|".join(re.escape(word) for word in siblings)
            self.regex = rf"(?!(?:{words})$)[^/]+"


ID_PARAMETER_SCHEMA = {"type": "string", "format": "uuid"}


_CONVERTER = re.compile(r"<(?:[^<>:]+:)?(\w+)>")
UNMATCHED = "(no route)"  # how logs and metrics name a request no route matched


@functools.lru_cache(maxsize=1024)
def template_of(rule: str) -> str:
    """A route as logs and metrics name it: the rule with converters left out
    (`/api/files/<id:file_id>` -> `/api/files/<file_id>`); once per rule, not per request."""
    return _CONVERTER.sub(r"<\1>", rule)

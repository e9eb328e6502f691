"""Identifiers taken from URLs."""

from __future__ import annotations

import uuid

from werkzeug.routing import BaseConverter

from .errors import ValidationFailed


def parse_uuid(value: str, what: str = "ID") -> uuid.UUID:
    """Seed 001 answers a malformed id with 400, not 404."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed(f"Invalid {what} format: expected a UUID", details={"value": str(value)[:64]}) from None


class IdConverter(BaseConverter):
    """`<id:key_id>`: a UUID in a URL path, documented as one (`format: uuid`).

    The value reaches the view as text and `parse_uuid` reads it, so a malformed id is answered
    with 400 as seed 001 asks, not with routing's 404. A plain lower-case word is never taken for
    an id: it names a sibling route (`/api/keys/validate`), which must not also match
    `/api/keys/<key_id>` and so advertise that route's methods.
    """

    regex = r"(?![a-z_]+$)[^/]+"
    part_isolating = True


ID_PARAMETER_SCHEMA = {"type": "string", "format": "uuid"}

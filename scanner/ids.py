"""Identifiers taken from URLs."""

from __future__ import annotations

import uuid

from .errors import ValidationFailed


def parse_uuid(value: str, what: str = "ID") -> uuid.UUID:
    """Seed 001 answers a malformed id with 400, not 404."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed(f"Invalid {what} format: expected a UUID", details={"value": str(value)[:64]}) from None

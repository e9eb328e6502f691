from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from ..request_parser import StrictBoolean
from .services import KEY_CHARS, KEY_MAX, KEY_MIN


class Trimmed(fields.String):
    """A string with surrounding whitespace removed, as pasted keys and names often carry it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _key_value(**kwargs: Any) -> Trimmed:
    # The value never appears in an error message: a rejected key may still be a real secret.
    return Trimmed(
        validate=[
            validate.Length(min=KEY_MIN, max=KEY_MAX, error="must be between {min} and {max} characters"),
            validate.Regexp(KEY_CHARS, error="must be printable ASCII without spaces"),
        ],
        load_only=True,
        **kwargs,
    )


def _name(**kwargs: Any) -> Trimmed:
    return Trimmed(validate=validate.Length(min=1, max=100), **kwargs)


_per_minute = {"validate": validate.Range(min=1, max=1_000_000), "metadata": {"description": "Requests per minute"}}
_per_day = {"validate": validate.Range(min=1, max=100_000_000), "metadata": {"description": "Requests per UTC day"}}


class ApiKeyCreateSchema(Schema):
    name = _name(required=True)
    key_value = _key_value(required=True)
    per_minute = fields.Integer(**_per_minute)
    per_day = fields.Integer(**_per_day)


class ApiKeyUpdateSchema(Schema):
    name = _name()
    key_value = _key_value()
    is_active = StrictBoolean()
    per_minute = fields.Integer(**_per_minute)
    per_day = fields.Integer(**_per_day)


class ApiKeyValidateSchema(Schema):
    # Only a missing or blank value is a 400 (seed 001); a value that cannot be a key is answered
    # {"valid": false} like one VirusTotal rejects (services.validate_value).
    key_value = Trimmed(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, error="API key is required"),
        error_messages={"required": "API key is required"},
    )


class ApiKeyUsageSchema(Schema):
    minute_used = fields.Integer()
    minute_remaining = fields.Integer()
    minute_resets_at = fields.DateTime(
        allow_none=True, metadata={"description": "When the oldest request of the window expires and a token frees"}
    )
    day_used = fields.Integer()
    day_remaining = fields.Integer()
    day_resets_at = fields.DateTime(metadata={"description": "The next 00:00 UTC"})


class ApiKeySchema(Schema):
    """A stored key as its owner sees it: never the key itself, only its last four characters."""

    id = fields.UUID()
    name = fields.String()
    is_active = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    last4 = fields.String()
    is_verified = fields.Boolean(metadata={"description": "VirusTotal has accepted the key"})
    per_minute = fields.Integer()
    per_day = fields.Integer()
    last_used_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    usage = fields.Nested(
        ApiKeyUsageSchema, allow_none=True, metadata={"description": "null while the quota store is unreachable"}
    )
    exhausted_until = fields.DateTime(
        allow_none=True, metadata={"description": "VirusTotal answered 429: no call uses the key before then"}
    )


class ApiKeyListSchema(Schema):
    api_keys = fields.List(fields.Nested(ApiKeySchema))


class ApiKeyEnvelopeSchema(Schema):
    message = fields.String()
    api_key = fields.Nested(ApiKeySchema)


class ApiKeyDeletedSchema(Schema):
    message = fields.String()


class ApiKeyValidationSchema(Schema):
    valid = fields.Boolean()
    message = fields.String()

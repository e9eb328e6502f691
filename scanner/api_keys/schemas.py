from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from ..request_parser import CONTROL_CHARS, StrictBoolean
from .services import KEY_MAX, KEY_MIN

KEY_CHARS = r"\x21-\x7e"  # printable ASCII, no spaces (as services.KEY_CHARS)


_SPACE = r" \t\r\n"  # what pasting adds around a key or a name


class Trimmed(fields.String):
    """A string with surrounding white space (spaces, tabs, line breaks) removed, as pasted keys
    and names often carry it, then `bounds` (min, max) characters of the class `chars`, neither the
    first nor the last a space. One pattern documents all of it, the padding included; a field
    with a format of its own is documented by that format and its length."""

    def __init__(self, chars: str, bounds: tuple[int, int | None], errors: tuple[str, str], **kwargs: Any) -> None:
        low, high = bounds
        inner = f"[{chars}]"
        edge = f"[{chars}{_SPACE}]" if chars.startswith("^") else inner
        if high is None:
            core = f"{edge}(?:{inner}*{edge})?"
        elif low <= 1:
            core = f"{edge}(?:{inner}{{0,{high - 2}}}{edge})?"
        else:
            core = f"{edge}{inner}{{{low - 2},{high - 2}}}{edge}"
        self.rule, self.bounds, self.errors = re.compile(core), bounds, errors
        metadata = kwargs.pop("metadata", {})
        if "format" in metadata:  # the format (and its description) tells the characters
            documented = {"minLength": low, "maxLength": high} if high else {"minLength": low}
        else:
            documented = {"pattern": f"^[{_SPACE}]*{core}[{_SPACE}]*$"}
        super().__init__(metadata={**documented, **metadata}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip(" \t\r\n")
        (low, high), (length_error, chars_error) = self.bounds, self.errors
        if not low <= len(text) <= (high or len(text)):
            raise ValidationError(length_error.format(min=low, max=high))
        if not self.rule.fullmatch(text):
            raise ValidationError(chars_error)
        return text


def _key_value(**kwargs: Any) -> Trimmed:
    # The value never appears in an error message: a rejected key may still be a real secret.
    return Trimmed(
        KEY_CHARS,
        (KEY_MIN, KEY_MAX),
        ("must be between {min} and {max} characters", "must be printable ASCII without spaces"),
        load_only=True,
        # Not a JSON Schema format: a key VirusTotal accepts, which only VirusTotal can tell.
        metadata={
            "format": "vt-api-key",
            "description": "A VirusTotal API key (printable ASCII without spaces; white space around it is "
            "ignored); VirusTotal is asked whether it is one",
        },
        **kwargs,
    )


def _name(**kwargs: Any) -> Trimmed:
    return Trimmed(
        f"^{CONTROL_CHARS}", (1, 100), ("Length must be between {min} and {max}.", "Must not be blank"), **kwargs
    )


_per_minute = {"validate": validate.Range(min=1, max=1_000_000), "metadata": {"description": "Requests per minute"}}
_per_day = {"validate": validate.Range(min=1, max=100_000_000), "metadata": {"description": "Requests per UTC day"}}


class ApiKeyCreateSchema(Schema):
    name = _name(required=True)
    key_value = _key_value(required=True)
    per_minute = fields.Integer(**_per_minute)
    per_day = fields.Integer(**_per_day)


class ApiKeyUpdateSchema(Schema):
    class Meta:
        openapi = {"minProperties": 1}  # an empty update is refused

    name = _name()
    key_value = _key_value()
    is_active = StrictBoolean()
    per_minute = fields.Integer(**_per_minute)
    per_day = fields.Integer(**_per_day)


class ApiKeyValidateSchema(Schema):
    # Only a missing or blank value is a 400 (seed 001); a value that cannot be a key is answered
    # {"valid": false} like one VirusTotal rejects (services.validate_value).
    key_value = Trimmed(
        f"^{CONTROL_CHARS}",
        (1, None),
        ("API key is required", "API key is required"),
        required=True,
        load_only=True,
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

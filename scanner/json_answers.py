"""Answers sent as JSON text made outside flask-smorest's response decorator, exactly as it would
make them from the operation's response schema:

- `made` and `sent`: an answer made once and kept (a scan's status, a history page,
  scanner/event_memory.py), by the schema's own dump.
- `written`: an answer made on every request from a presenter's plain data (a cached check_ioc),
  where the schema's dump cost as much as the rest of the answer. A presenter already gives each
  field the schema's form but for dates and ids, which are written as the schemas write them; the
  schema stays the answer's documentation, and tests hold the two to the same text. It is written
  by orjson, several times faster than the standard encoder; an answer orjson would write
  otherwise than the app's JSON settings (text beyond ASCII, which they escape; a number beyond 64
  bits, which orjson refuses) is written by the standard encoder instead. What differs still is
  only how a float in exponent form is spelled, not its value (1.5e-7 for 1.5e-07).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response, current_app
from marshmallow import Schema

from .jsonable import json_default

# The app's JSON settings (scanner/__init__.py: keys in the order given; ASCII only), compact.
_PLAIN = json.JSONEncoder(default=json_default, separators=(",", ":"))


def made(schema: Schema, value: Any) -> str:
    return current_app.json.dumps(schema.dump(value), separators=(",", ":"))


def written(value: Any) -> str:
    try:
        text = orjson.dumps(value, default=json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError:
        return _PLAIN.encode(value)
    return text.decode() if text.isascii() else _PLAIN.encode(value)


def sent(text: str) -> Response:
    return current_app.response_class(text, mimetype=current_app.json.mimetype)

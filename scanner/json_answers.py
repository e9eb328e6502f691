"""Answers whose JSON is made once and kept (a scan's status, a history page, scanner/event_memory.py):
made by the operation's own response schema as flask-smorest would make it, and sent as made."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from marshmallow import Schema


def made(schema: Schema, value: Any) -> str:
    return current_app.json.dumps(schema.dump(value), separators=(",", ":"))


def sent(text: str) -> Response:
    return current_app.response_class(text, mimetype=current_app.json.mimetype)

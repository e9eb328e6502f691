"""The one parser of request input: every JSON body, query string and form a route declares with
`@blp.arguments` is read here before any schema or database sees it.

- JSON is parsed with limits (nesting depth, length of a number, no NaN/Infinity); whatever the
  decoder refuses, including Python's int-length `ValueError` and a `RecursionError`, is a 400.
- Text with NUL or other control characters (tab, newline and carriage return aside) or lone UTF-16
  surrogates is refused with 400: PostgreSQL cannot store NUL, and no name, note or filter needs
  the rest.
- Unknown query parameters are refused everywhere, as marshmallow refuses unknown body fields.
- Schema failures answer 400, the status the envelope and the OpenAPI document give them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import marshmallow as ma
from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 64
_FORBIDDEN_CHARS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff"
FORBIDDEN_TEXT = re.compile(f"[{_FORBIDDEN_CHARS}]")
# The same rule for the OpenAPI document, in the escapes JSON Schema's regular expressions read.
CONTROL_CHARS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
ALLOWED_TEXT_PATTERN = rf"^[^{CONTROL_CHARS}]*$"
# The same, for text that must not be blank either (a name, a note): one character that is not
# white space, anywhere.
NON_BLANK_TEXT_PATTERN = rf"^[^{CONTROL_CHARS}]*[^\s{CONTROL_CHARS}][^{CONTROL_CHARS}]*$"
FORBIDDEN_TEXT_MESSAGE = "Must not contain control characters (such as NUL) or unpaired surrogates"


class StrictBoolean(ma.fields.Boolean):
    """A JSON body's boolean: true or false only; "yes", 1 or "false" are type errors, not guesses.
    (Query strings carry text, so their flags stay marshmallow's `Boolean`.)"""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ma.ValidationError("Not a valid boolean; use true or false.")
        return value


class NoQueryArgsSchema(ma.Schema):
    """For a list that takes no query parameters: any given is refused, as every list does."""


class BodyRefused(ValueError):
    """A JSON body the service will not read; the message says why."""


def _number(text: str, convert) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyRefused(f"numbers are limited to {MAX_NUMBER_CHARS} characters")
    return convert(text)


def _no_constant(name: str) -> Any:
    raise BodyRefused(f"{name} is not JSON")


# Made once: `json.loads` with hooks builds a decoder for every body.
_DECODER = json.JSONDecoder(
    parse_int=lambda s: _number(s, int), parse_float=lambda s: _number(s, float), parse_constant=_no_constant
)


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body within the limits above; raises `BodyRefused` or `json.JSONDecodeError`."""
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):  # as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        document = _DECODER.decode(text)
    except RecursionError:
        raise BodyRefused(f"nesting is limited to {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise BodyRefused("the body is not UTF-8") from None
    except ValueError as exc:
        if isinstance(exc, (BodyRefused, json.JSONDecodeError)):
            raise
        raise BodyRefused(str(exc)) from None
    _check_depth(document)
    return document


def _check_depth(document: Any) -> None:
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise BodyRefused(f"nesting is limited to {MAX_JSON_DEPTH} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a decoded document (keys included), with where it sits: `notes.0.text`."""
    stack = [(node, path)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                yield where, key
                stack.append((value, where))
        elif isinstance(node, list):
            stack.extend((value, f"{path}.{i}" if path else str(i)) for i, value in enumerate(node))


def refuse_forbidden_text(location: str, pairs: Iterable[tuple[str, str]]) -> None:
    """Answer 400 (VALIDATION_ERROR) naming each field whose text holds a forbidden character."""
    bad = {path or "_body": [FORBIDDEN_TEXT_MESSAGE] for path, text in pairs if FORBIDDEN_TEXT.search(text)}
    if bad:
        abort(400, messages={location: bad})


class RequestParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "querystring": ma.RAISE,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}

    def _get_schema(self, argmap: Any, req: Request) -> ma.Schema:
        # A route's schema class is built once, not per request: building one deep-copies every
        # declared field, which costs more than loading a small query string. Loading keeps no
        # state on the schema, so one instance serves every request.
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            if argmap not in self._schemas:
                self._schemas[argmap] = argmap()
            return self._schemas[argmap]
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        if not raw:
            return core.missing
        try:
            document = parse_json(raw)
        except json.JSONDecodeError as exc:
            abort(400, exc=exc, messages={"json": [f"Invalid JSON body: {exc.msg} (line {exc.lineno})"]})
        except BodyRefused as exc:
            abort(400, exc=exc, messages={"json": [f"Invalid JSON body: {exc}"]})
        refuse_forbidden_text("json", _strings(document))
        return document

    def load_querystring(self, req: Request, schema: ma.Schema) -> Any:
        refuse_forbidden_text("query", _multidict_strings(req.args))
        return super().load_querystring(req, schema)

    def load_form(self, req: Request, schema: ma.Schema) -> Any:
        refuse_forbidden_text("form", _multidict_strings(req.form))
        return super().load_form(req, schema)


def _multidict_strings(values) -> Iterator[tuple[str, str]]:
    for key, value in values.items(multi=True):
        yield key, key
        yield key, value

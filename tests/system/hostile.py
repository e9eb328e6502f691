"""Hostile requests for every operation of the OpenAPI document: NUL and other control characters
in each string field, query parameter and form field, integers past Python's digit limit, nesting
deeper than the decoder's recursion limit, NaN, lone surrogates, unknown query parameters.

The cases come from the document itself, so a new route is covered the day it is documented.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

NUL_TEXT = "evil\x00text"


@dataclass
class Case:
    name: str
    method: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    field: str | None = None  # the field the error's details must name

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} {self.name}"


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _string_properties(spec: dict, schema: dict) -> list[str]:
    schema = _resolve(spec, schema)
    properties = dict(schema.get("properties", {}))
    for variant in schema.get("oneOf", []):  # a body documented as one of several shapes
        properties |= _resolve(spec, variant).get("properties", {})
    return [name for name, prop in properties.items() if _resolve(spec, prop).get("type") in ("string", None)]


def cases(spec: dict, path_values: dict[str, str]) -> Iterator[Case]:
    """Every hostile case of every operation; `path_values` fills path parameters by name."""
    for template, operations in spec["paths"].items():
        path = template
        for name, value in path_values.items():
            path = path.replace("{" + name + "}", value)
        path = path.replace("{", "").replace("}", "") if "{" in path else path
        for method, operation in operations.items():
            if method == "parameters":
                continue
            yield from _operation_cases(spec, method.upper(), path, operation)


def _operation_cases(spec: dict, method: str, path: str, operation: dict) -> Iterator[Case]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        for name in _string_properties(spec, schema):
            yield Case(f"NUL in {name}", method, path, {"json": {name: NUL_TEXT}}, field=name)
            yield Case(f"bell character in {name}", method, path, {"json": {name: "ring\x07"}}, field=name)
        raw = {
            "integer of 5,000 digits": '{"n": ' + "9" * 5000 + "}",
            "nesting 5,000 deep": "[" * 5000 + "]" * 5000,
            "nesting 100 deep": '{"a": ' * 100 + "1" + "}" * 100,
            "NaN": '{"n": NaN}',
            "lone surrogate": '{"name": "\\ud800"}',
            "NUL in a key": '{"na\\u0000me": "x"}',
        }
        for name, body in raw.items():
            yield Case(name, method, path, {"data": body, "content_type": "application/json"})
    if "application/x-www-form-urlencoded" in content:
        schema = content["application/x-www-form-urlencoded"]["schema"]
        for name in _string_properties(spec, schema):
            yield Case(f"NUL in form field {name}", method, path, {"data": {name: NUL_TEXT}}, field=name)
    query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    for name in query:
        yield Case(f"NUL in query {name}", method, path, {"query_string": {name: NUL_TEXT}}, field=name)
    if query:
        yield Case("unknown query parameter", method, path, {"query_string": {"no_such_parameter": "1"}})


def random_id() -> str:
    return str(uuid.uuid4())

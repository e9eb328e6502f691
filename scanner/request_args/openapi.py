"""OpenAPI fragments that schemas cannot express: flask-smorest documents JSON bodies from
schemas, but a streamed multipart upload is read by hand, so its body is described here; and the
error envelope, which flask-smorest would otherwise document in its own default shape."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec, BasePlugin

from ..errors import ErrorEnvelopeSchema
from ..request_parser import ALLOWED_TEXT_PATTERN

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}


def multipart_file_body(
    file_description: str | None = None, file_format: str = "binary", **fields: dict[str, Any]
) -> dict[str, Any]:
    """The request body of an upload whose part `file` is required and not empty, beside optional
    `fields`; `file_format` names what the part must hold when not just any bytes (and is never
    empty)."""
    file: dict[str, Any] = {"type": "string", "format": file_format}
    if file_format == "binary":
        file["minLength"] = 1
    if file_description:
        file["description"] = file_description
    schema = {"type": "object", "required": ["file"], "properties": {"file": file, **fields}}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


def links(status: int, parameter: str, pointer: str, *operations: str) -> dict[str, Any]:
    """For `@blp.doc(**links(...))`: the id a `status` response carries at `pointer` (a JSON
    pointer into its body) is the path parameter `parameter` of each of `operations`
    ("GET /api/files/{file_id}"). Clients and stateful testing follow these links."""
    found = {}
    for operation in operations:
        method, path = operation.split(" ", 1)
        escaped = path.replace("~", "~0").replace("/", "~1")
        name = re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()} {path}").strip("_")
        found[name] = {
            "operationRef": f"#/paths/{escaped}/{method.lower()}",
            "parameters": {parameter: f"$response.body#{pointer}"},
        }
    return {"responses": {status: {"links": found}}}


class ErrorResponsesPlugin(BasePlugin):
    """What the request parser and the error handlers do, told by the document: every error
    response of every operation carries the envelope, including those declared with a description
    alone (`@blp.alt_response(409, description=...)`); every operation that needs a token documents
    the 401 it answers without one; free text in a body or a query string is documented without
    the control characters the parser refuses."""

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        """What a body schema's `Meta.openapi` adds to its component: a rule between fields that
        properties alone cannot state (`minProperties`, `anyOf`, `oneOf` ...). A key given as
        None is taken out (a `oneOf` of whole variants replaces `properties`)."""
        extra = getattr(getattr(kwargs.get("schema"), "Meta", None), "openapi", {})
        for key in [key for key, value in extra.items() if value is None]:
            definition.pop(key, None)
        return {key: value for key, value in extra.items() if value is not None} or None

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        self.spec = spec
        spec.components.schema(ERROR_SCHEMA_NAME, schema=ErrorEnvelopeSchema)

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                is_error = str(status) == "default" or str(status)[0] in "45"
                if is_error and isinstance(response, dict) and "content" not in response:
                    response["content"] = {"application/json": {"schema": ERROR_SCHEMA_REF}}
            if operation.get("security") != []:
                responses.setdefault("401", "UNAUTHORIZED")
            for parameter in operation.get("parameters", []):
                if isinstance(parameter, dict) and parameter.get("in") == "query":
                    _free_text_pattern(parameter.get("schema", {}))
                    _comma_separated(parameter)
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = self._component(content.get("schema", {}))
                for prop in schema.get("properties", {}).values():
                    _free_text_pattern(self._component(prop))

    def _component(self, schema: dict) -> dict:
        ref = schema.get("$ref", "")
        if not ref.startswith("#/components/schemas/"):
            return schema
        return self.spec.components.schemas.get(ref.rsplit("/", 1)[-1], {})


def _free_text_pattern(schema: dict) -> None:
    if (
        schema.get("type") == "string"
        and schema.get("format", "password") == "password"
        and not {"enum", "pattern"} & schema.keys()
    ):
        schema["pattern"] = ALLOWED_TEXT_PATTERN


def _comma_separated(parameter: dict) -> None:
    """A list in one query parameter (`request_args.CommaList`) is written `a,b`, not `x=a&x=b`."""
    if parameter.get("schema", {}).get("type") == "array" and "explode" not in parameter:
        parameter.update(style="form", explode=False)

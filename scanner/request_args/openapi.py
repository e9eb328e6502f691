"""OpenAPI fragments that schemas cannot express: flask-smorest documents JSON bodies from
schemas, but a streamed multipart upload is read by hand, so its body is described here; and the
error envelope, which flask-smorest would otherwise document in its own default shape."""

from __future__ import annotations

from typing import Any

from apispec import APISpec, BasePlugin

from ..errors import ErrorEnvelopeSchema
from ..request_parser import ALLOWED_TEXT_PATTERN

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}


def multipart_file_body(file_description: str | None = None, **fields: dict[str, Any]) -> dict[str, Any]:
    """The request body of an upload whose part `file` is required, beside optional `fields`."""
    file: dict[str, Any] = {"type": "string", "format": "binary"}
    if file_description:
        file["description"] = file_description
    schema = {"type": "object", "required": ["file"], "properties": {"file": file, **fields}}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


class ErrorResponsesPlugin(BasePlugin):
    """What the request parser and the error handlers do, told by the document: every error
    response of every operation carries the envelope, including those declared with a description
    alone (`@blp.alt_response(409, description=...)`); every operation that needs a token documents
    the 401 it answers without one; free text in a body or a query string is documented without
    the control characters the parser refuses."""

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

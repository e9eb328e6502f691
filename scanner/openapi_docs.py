"""OpenAPI fragments that schemas cannot express: flask-smorest documents JSON bodies from
schemas, but a streamed multipart upload is read by hand, so its body is described here; and the
error envelope, which flask-smorest would otherwise document in its own default shape."""

from __future__ import annotations

from typing import Any

from apispec import APISpec, BasePlugin

from .errors import ErrorEnvelopeSchema

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
    """Every error response of every operation documents the envelope, including those declared
    with a description alone (`@blp.alt_response(409, description=...)`), and every operation
    that needs a token documents the 401 it answers without one."""

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
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

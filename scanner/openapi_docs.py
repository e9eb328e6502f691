"""OpenAPI fragments that schemas cannot express: flask-smorest documents JSON bodies from
schemas, but a streamed multipart upload is read by hand, so its body is described here."""

from __future__ import annotations

from typing import Any


def multipart_file_body(file_description: str | None = None, **fields: dict[str, Any]) -> dict[str, Any]:
    """The request body of an upload whose part `file` is required, beside optional `fields`."""
    file: dict[str, Any] = {"type": "string", "format": "binary"}
    if file_description:
        file["description"] = file_description
    schema = {"type": "object", "required": ["file"], "properties": {"file": file, **fields}}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}

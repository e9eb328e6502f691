"""Request ids and security headers on every response."""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .docs import DOCS_CSP

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}
# Swagger UI needs its scripts and styles (system/docs.py); every other response is data and needs nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def init_middleware(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.before_request
    def refuse_oversized_bodies() -> None:
        # Checked up front so every route answers 413, whichever parser would read the body.
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if request.is_json and app.config.get("MAX_JSON_BYTES"):
            # JSON is read into memory whole; a streamed (chunked) body is read no further than this.
            limit = min(limit or app.config["MAX_JSON_BYTES"], app.config["MAX_JSON_BYTES"])
            request.max_content_length = limit
        if limit and (request.content_length or 0) > limit:
            raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes")

    @app.after_request
    def add_headers(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        csp = DOCS_CSP if request.path.startswith("/api/docs") else API_CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        return response

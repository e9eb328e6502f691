"""Request ids, the access log line and security headers on every response."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import logs
from ..rate_limits import request_identity
from ..request_args.ids import route_template
from .docs import DOCS_CSP

access_log = logging.getLogger("scanner.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Only when the request came over HTTPS, directly or through a trusted proxy (TRUSTED_PROXIES).
HSTS = "max-age=31536000; includeSubDomains"
# Swagger UI needs its scripts and styles (system/docs.py); every other response is data and needs nothing.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def init_middleware(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        g.log_token = logs.bind(request_id=g.request_id)

    @app.teardown_request
    def forget_request_id(exc: BaseException | None = None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            logs.unbind(token)

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
        if request.is_secure:
            # Over plain HTTP the header is ignored by browsers (RFC 6797 8.1) and only misleads.
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        csp = DOCS_CSP if request.path.startswith("/api/docs") else API_CSP
        response.headers.setdefault("Content-Security-Policy", csp)
        return response

    @app.after_request
    def log_access(response):
        # The access log line (gunicorn's own is off): the route template, not the path, so ids in
        # URLs neither flood the log index nor leak; the user from the token's signature only.
        route = route_template() or "(no route)"
        access_log.info(
            "%s %s %s",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
                "user_id": request_identity(),
                "remote_addr": request.remote_addr,
            },
        )
        return response

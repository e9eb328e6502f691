"""What every request pays around its route: a request id, the security headers, the 413 for an
oversized body, and once it is answered the access log line, seed 002's request count and
Prometheus' series.

A WSGI middleware does what needs no route (the id, the log context, the headers: added to the
plain list the server sends, not through werkzeug's header object), and one after-request hook
records the answer, once, for all three readers. Every hook Flask runs costs its dispatch on every
request, whatever the route, and so does every header looked up by name: there are few of both.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import logs
from ..providers.metrics import count_request
from ..rate_limits import request_identity
from ..request_args.ids import UNMATCHED, template_of
from .docs import DOCS_CSP
from .prometheus import observe

access_log = logging.getLogger("scanner.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# In the WSGI environ: when the middleware took the request, and its log context.
_STARTED, _LOG_TOKEN = "scanner.started", "scanner.log_token"

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

Header = tuple[str, str, str]  # lower-case name (to compare), name, value


def _defaults(csp: str) -> tuple[Header, ...]:
    named = {**SECURITY_HEADERS, "Content-Security-Policy": csp}
    return tuple((name.lower(), name, value) for name, value in named.items())


_API_HEADERS = _defaults(API_CSP)
_DOCS_HEADERS = _defaults(DOCS_CSP)
_HSTS_HEADER: Header = ("strict-transport-security", "Strict-Transport-Security", HSTS)


class _RequestIds:
    """Request ids unique across processes and restarts: 16 random hex digits drawn once per
    process, then a counter (a random draw per request costs a system call)."""

    def __init__(self) -> None:
        self._restart()
        os.register_at_fork(after_in_child=self._restart)  # a forked worker is a process of its own

    def _restart(self) -> None:
        # itertools.count: one C call, so two threads never draw the same number.
        self.prefix, self.counter = os.urandom(8).hex(), itertools.count(1)

    def new(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_ids = _RequestIds()


class RequestEdge:
    """The WSGI middleware in front of the Flask app (and behind ProxyFix, whose scheme it reads)."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable):
        environ[_STARTED] = time.perf_counter()  # the wait below is part of the request's time
        # Let the other connections' requests go first. Under gevent a connection whose client sends
        # its next request while this one is answered finds it already read and never waits, so one
        # busy client could hold a process while others queued for a second (a request answered
        # from memory, with nothing to wait for, is all it takes); sleep(0) yields to them.
        time.sleep(0)
        incoming = environ.get("HTTP_X_REQUEST_ID")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else _ids.new()
        defaults = _DOCS_HEADERS if environ.get("PATH_INFO", "").startswith("/api/docs") else _API_HEADERS
        if environ.get("wsgi.url_scheme") in ("https", "wss"):
            # Over plain HTTP the header is ignored by browsers (RFC 6797 8.1) and only misleads.
            defaults = (*defaults, _HSTS_HEADER)

        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            # The request id replaces any other; the rest are defaults a route may have set itself.
            present = {name.lower() for name, _ in headers}
            if "x-request-id" in present:
                headers[:] = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            headers.append(("X-Request-ID", request_id))
            headers.extend((name, value) for lower, name, value in defaults if lower not in present)
            return start_response(status, headers, exc_info)

        # Bound here, before any hook, so that every line of the request carries its id; unbound
        # when Flask's request context ends, after the last byte of a streamed body.
        environ[_LOG_TOKEN] = logs.bind(request_id=request_id)
        return self.wsgi_app(environ, start)


def end_log_context(exc: BaseException | None = None) -> None:
    token = request.environ.pop(_LOG_TOKEN, None)
    if token is not None:
        logs.unbind(token)


def refuse_oversized_bodies() -> None:
    """Checked up front so every route answers 413, whichever parser would read the body."""
    environ = request.environ
    if not environ.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" not in environ:
        return  # no body, nothing to refuse
    config = current_app.config
    limit = config.get("MAX_CONTENT_LENGTH")
    if request.is_json and config.get("MAX_JSON_BYTES"):
        # JSON is read into memory whole; a streamed (chunked) body is read no further than this.
        limit = min(limit or config["MAX_JSON_BYTES"], config["MAX_JSON_BYTES"])
        request.max_content_length = limit
    if limit and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes")


def record_answer(response: Response) -> Response:
    """The access log line, seed 002's count and Prometheus' series of an answered request: by the
    route template, not the path, so ids in URLs neither flood a log index nor leak."""
    current = request._get_current_object()
    environ = current.environ
    rule = current.url_rule
    route = template_of(rule.rule) if rule is not None else UNMATCHED
    status = response.status_code
    started = environ.get(_STARTED)
    seconds = time.perf_counter() - started if started is not None else 0.0
    if access_log.isEnabledFor(logging.INFO):
        # gunicorn's own access line is off: this one has the user, from the token's signature only.
        access_log.info(
            "%s %s %s",
            current.method,
            route,
            status,
            extra={
                "method": current.method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "user_id": request_identity(),
                "remote_addr": current.remote_addr,
            },
        )
    count_request(route, status)
    observe(route, current.method, status, seconds)
    return response


def init_middleware(app: Flask) -> None:
    app.before_request(refuse_oversized_bodies)
    app.after_request(record_answer)
    app.teardown_request(end_log_context)
    app.wsgi_app = RequestEdge(app.wsgi_app)

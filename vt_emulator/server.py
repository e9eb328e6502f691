"""The emulator's HTTP face: VirusTotal's v3 endpoints under /api/v3, the one-time upload URLs
under /_upload, and the control surface under /_emulator (JSON, no key, not counted)."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .objects import ApiError, ContentDigest
from .state import EmulatorConfig, EmulatorState

log = logging.getLogger("vt_emulator")

MiB = 1024 * 1024
DIRECT_UPLOAD_LIMIT = 32 * MiB  # POST /files refuses bigger bodies
UPLOAD_URL_LIMIT = 650 * MiB + MiB  # the 650 MB file limit plus room for the multipart envelope

_API_ROUTES = (
    ("GET", "/files/upload_url"),
    ("GET", "/files/{id}"),
    ("POST", "/files"),
    ("POST", "/files/{id}/analyse"),
    ("GET", "/analyses/{id}"),
    ("GET", "/analyses/{id}/item"),
    ("GET", "/urls/{id}"),
    ("POST", "/urls"),
    ("GET", "/domains/{id}"),
    ("GET", "/ip_addresses/{id}"),
)
UPLOAD_LABEL = "POST /_upload"
_WHOLE_BODY = {"GET /analyses/{id}"}  # answers with `meta` next to `data`

_CONTROL_ROUTES = (
    ("POST", "/_emulator/keys", "keys"),
    ("POST", "/_emulator/files", "add_file"),
    ("DELETE", "/_emulator/files/<id>", "forget_file"),
    ("POST", "/_emulator/urls", "add_url"),
    ("POST", "/_emulator/faults", "faults"),
    ("GET", "/_emulator/faults", "faults"),
    ("POST", "/_emulator/config", "config"),
    ("GET", "/_emulator/config", "config"),
    ("POST", "/_emulator/reset", "reset"),
    ("GET", "/_emulator/counts", "counts"),
)


def _url_map() -> Map:
    rules = [
        Rule("/api/v3" + path.replace("{id}", "<id>"), endpoint=f"{method} {path}", methods=[method])
        for method, path in _API_ROUTES
    ]
    rules.append(Rule("/_upload/<id>", endpoint=UPLOAD_LABEL, methods=["POST"]))
    rules += [Rule(path, endpoint=f"control:{name}", methods=[method]) for method, path, name in _CONTROL_ROUTES]
    return Map(rules)


class _Request(Request):
    def _get_file_stream(self, *args: Any, **kwargs: Any) -> ContentDigest:  # type: ignore[override]
        return ContentDigest()


class _DroppedConnection(ConnectionAbortedError):
    """Raised after closing the socket: werkzeug's server treats it as a vanished client."""


class _RequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path only: query strings (e.g. /_emulator/counts?key=) may carry API keys.
        log.info("%s %s %s", self.command, self.path.split("?", 1)[0], code)

    def log(self, type: str, message: str, *args: Any) -> None:
        log.log(logging.ERROR if type == "error" else logging.INFO, message.rstrip(), *args)


def _drop(environ: dict[str, Any]) -> None:
    sock = environ["werkzeug.socket"]
    with contextlib.suppress(OSError):  # the client may have gone already
        sock.shutdown(socket.SHUT_RDWR)
    raise _DroppedConnection("dropped by fault injection")


class Emulator(EmulatorState):
    """A VirusTotal v3 look-alike over real HTTP, for tests, benchmarks and demos."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        self._map = _url_map()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._open = threading.Event()  # cleared by hold(): API requests wait, unanswered
        self._open.set()
        self._held = 0
        self._handlers: dict[str, Callable[[Request, str, str | None], Any]] = {
            "GET /files/upload_url": lambda request, base, _: f"{request.host_url}_upload/{self.new_upload_token()}",
            "GET /files/{id}": lambda request, base, item: self.file_body(item, base),
            "POST /files": lambda request, base, _: self._upload(request, DIRECT_UPLOAD_LIMIT),
            "POST /files/{id}/analyse": lambda request, base, item: _descriptor(self.rescan(item)),
            "GET /analyses/{id}": lambda request, base, item: self.analysis_body(item, base),
            "GET /analyses/{id}/item": lambda request, base, item: self.analysis_item(item, base),
            "GET /urls/{id}": lambda request, base, item: self.url_body(item, base),
            "POST /urls": lambda request, base, _: _descriptor(self.submit_url(_form_url(request))),
            "GET /domains/{id}": lambda request, base, item: self.domain_body(item, base),
            "GET /ip_addresses/{id}": lambda request, base, item: self.ip_body(item, base),
            UPLOAD_LABEL: self._upload_once,
        }

    def __repr__(self) -> str:
        return f"Emulator(url={self.url if self._server else None!r})"

    # -- holding requests in flight ------------------------------------------------------------

    def hold(self) -> None:
        """Keep every API request that arrives from now on waiting, unanswered, until release():
        lets a test act while a request is in flight."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    @property
    def held(self) -> int:
        """How many API requests are waiting for release()."""
        with self._lock:
            return self._held

    def reset(self) -> None:
        super().reset()
        self.release()

    def _wait_while_held(self) -> None:
        if self._open.is_set():
            return
        with self._lock:
            self._held += 1
        try:
            while not self._open.wait(0.05) and not self._stopping.is_set():
                pass
        finally:
            with self._lock:
                self._held -= 1

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on a background thread; port 0 picks a free port (see `url`)."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = make_server(host, port, self.wsgi_app, threaded=True, request_handler=_RequestHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="vt-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server, self._thread = None, None

    def __enter__(self) -> Emulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ending in /api/v3."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._server.host, self._server.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._server.port}/api/v3"

    # -- WSGI --------------------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = _Request(environ)
        try:
            response = self._dispatch(request)
        finally:
            request.close()
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        adapter = self._map.bind_to_environ(request.environ)
        try:
            label, args = adapter.match()
        except HTTPException:  # NotFound, MethodNotAllowed
            return _json(request, ApiError(404, "NotFoundError", f"{request.method} {request.path}").body(), 404)
        if label.startswith("control:"):
            return self._control(request, label.removeprefix("control:"), args.get("id"))
        return self._api(request, label, args.get("id"))

    def _api(self, request: Request, label: str, item: str | None) -> Response:
        key = request.headers.get("x-apikey") or None
        self._wait_while_held()
        generation = self.generation
        disruption = self.disruption()
        if disruption.delay:
            self._stopping.wait(disruption.delay)
        if disruption.drop:
            self.record(key, label, 0, generation)
            _drop(request.environ)
        status = 500
        try:
            if disruption.error is not None:
                raise disruption.error
            self.authorize(key)
            result = self._handlers[label](request, request.host_url + "api/v3", item)
            body = result if label in _WHOLE_BODY else {"data": result}
            status = 200
            return _json(request, body, status)
        except ApiError as error:
            status = error.status
            return _json(request, error.body(), status)
        finally:
            self.record(key, label, status, generation)

    def _upload_once(self, request: Request, base: str, token: str | None) -> dict[str, Any]:
        self.consume_upload_token(token or "")
        return self._upload(request, UPLOAD_URL_LIMIT)

    def _upload(self, request: Request, limit: int) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, "RequestEntityTooLargeError", f"Request body is larger than {limit} bytes")
        request.max_content_length = limit
        try:
            upload = request.files.get("file")
        except RequestEntityTooLarge:
            raise ApiError(413, "RequestEntityTooLargeError", f"Request body is larger than {limit} bytes") from None
        if upload is None:
            raise ApiError(400, "BadRequestError", 'Expected a multipart/form-data "file" field with a filename')
        if "filename*" in upload.headers.get("Content-Disposition", ""):
            raise ApiError(400, "BadRequestError", 'Use filename="...", not filename*=')
        digest = upload.stream
        assert isinstance(digest, ContentDigest)
        return _descriptor(self.submit_file(digest, upload.filename))

    # -- control -----------------------------------------------------------------------------

    def _control(self, request: Request, name: str, item: str | None) -> Response:
        payload = request.get_json(silent=True) if request.method == "POST" and name != "add_file" else None
        payload = payload if isinstance(payload, dict) else {}
        try:
            body = self._control_action(request, name, item, payload)
        except (KeyError, TypeError, ValueError, ApiError) as error:
            message = error.message if isinstance(error, ApiError) else str(error)
            return _json(request, {"error": {"code": "BadRequestError", "message": message}}, 400)
        return _json(request, body, 200)

    def _control_action(self, request: Request, name: str, item: str | None, payload: dict[str, Any]) -> Any:
        if name == "keys":
            self.add_key(payload["key"], **{k: v for k, v in payload.items() if k != "key"})
            return {"ok": True}
        if name == "add_file":
            date = request.args.get("last_analysis_date")
            sha256 = self.add_file(
                request.get_data(),
                verdict=request.args.get("verdict") or None,  # type: ignore[arg-type]
                last_analysis_date=int(date) if date else None,
                name=request.args.get("name") or None,
            )
            return {"sha256": sha256}
        if name == "forget_file":
            self.forget_file(item or "")
            return {"ok": True}
        if name == "add_url":
            return {"id": self.add_url(**payload)}
        if name == "faults":
            if request.method == "POST":
                self.set_faults(**payload)
            return _fields(self.faults)
        if name == "config":
            if request.method == "POST":
                self.configure(**payload)
            return _fields(self.config)
        if name == "reset":
            self.reset()
            return {"ok": True}
        key = request.args.get("key") or None
        return {"counts": self.counts(key), "statuses": self.statuses(key), "total": self.total(key)}


def _descriptor(analysis_id: str) -> dict[str, str]:
    return {"type": "analysis", "id": analysis_id}


def _form_url(request: Request) -> str:
    url = request.form.get("url")
    if not url:
        raise ApiError(400, "BadRequestError", 'Expected a "url" form field')
    return url


def _fields(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _json(request: Request, body: Any, status: int) -> Response:
    payload = json.dumps(body).encode()
    response = Response(payload, status, mimetype="application/json")
    if request.accept_encodings["gzip"]:
        response.set_data(gzip.compress(payload, compresslevel=5))
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response

"""The only code that talks HTTP to VirusTotal (API v3).

One urllib3 `PoolManager` per process carries the connection pools (one per proxy, when the
environment names one); the API key travels per request, because one worker process serves many
users' keys. urllib3 directly, not requests: a call costs half the CPU, and a worker spends a good
share of each scan on its calls.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

import certifi
import urllib3
from requests_toolbelt.multipart.encoder import MultipartEncoder
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as TransportTimeout

from ..metrics import SharedCounter
from .errors import (
    FileTooLargeError,
    InvalidKeyError,
    UnknownVTError,
    VirusTotalError,
    VTConnectionError,
    error_from_response,
)
from .reports import detection_ratio, parse_stats, url_id

__all__ = [
    "DEFAULT_BASE_URL",
    "DIRECT_UPLOAD_MAX_BYTES",
    "MAX_UPLOAD_BYTES",
    "USER_AGENT",
    "VirusTotalClient",
    "close_session",
    "detection_ratio",
    "parse_stats",
    "url_id",
]

log = logging.getLogger(__name__)

# By endpoint family ("GET /files") and outcome ("ok" or VirusTotal's error code), so the label
# set stays small; summed over every web and worker process, wherever it runs (scanner/metrics/).
VT_REQUESTS = SharedCounter("scanner_virustotal_requests_total", "Requests to VirusTotal", ("endpoint", "outcome"))

DEFAULT_BASE_URL = "https://www.virustotal.com/api/v3"
USER_AGENT = "scanner/1.0 (gzip)"
HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip", "Accept": "application/json"}

MiB = 1024 * 1024
# POST /files takes bodies up to 32 MB. Like vt-go, files over 30 MB take the upload_url route,
# which leaves 2 MB for the multipart envelope instead of cutting it close.
DIRECT_UPLOAD_MAX_BYTES = 30 * MiB
MAX_UPLOAD_BYTES = 650 * MiB

_POOLS = 4  # hosts: the API and the upload host
_POOL_MAXSIZE = 16


class _Pools:
    """This process's connection pools: a PoolManager for direct requests and a ProxyManager per
    proxy the environment names (read once: it does not change while the process runs)."""

    def __init__(self) -> None:
        # REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE, as operators already set them for requests and curl.
        ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        self._options = {"num_pools": _POOLS, "maxsize": _POOL_MAXSIZE, "headers": HEADERS, "ca_certs": ca_certs}
        self.direct = urllib3.PoolManager(**self._options)
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()

    @property
    def headers(self) -> dict[str, str]:
        return self.direct.headers

    def for_url(self, scheme: str, host: str) -> urllib3.PoolManager:
        proxy = _proxy_for(scheme, host)
        if proxy is None:
            return self.direct
        with self._lock:
            if proxy not in self._proxied:
                self._proxied[proxy] = urllib3.ProxyManager(proxy, **self._options)
            return self._proxied[proxy]

    def clear(self) -> None:
        self.direct.clear()
        for manager in self._proxied.values():
            manager.clear()


@functools.lru_cache(maxsize=64)
def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for this scheme and host (HTTPS_PROXY, HTTP_PROXY,
    ALL_PROXY; NO_PROXY honoured), or None."""
    hostname = urlsplit(f"{scheme}://{host}/").hostname or host
    if urllib.request.proxy_bypass(hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(scheme) or proxies.get("all") or None


_pools: _Pools | None = None
_pools_lock = threading.Lock()
# Pools inherited from the parent of a fork: kept referenced and never closed in the child,
# since closing takes urllib3 pool locks a vanished parent thread may hold.
_inherited_pools: list[_Pools] = []


def _shared_pools() -> _Pools:
    global _pools
    with _pools_lock:
        if _pools is None:
            _pools = _Pools()
        return _pools


def close_session() -> None:
    """Close this process's connections (at shutdown); the next request opens new ones."""
    global _pools
    with _pools_lock:
        pools, _pools = _pools, None
    if pools is not None:
        pools.clear()


def _forget_pools_in_child() -> None:
    global _pools, _pools_lock
    if _pools is not None:
        _inherited_pools.append(_pools)
    _pools = None
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_child)

# With retries off, urllib3 raises the failure itself: these are the ones of the transport
# (a bad URL, say, is not one, and reaches the caller as it is).
_TRANSPORT_ERRORS = (TransportTimeout, NewConnectionError, ProtocolError, ProxyError, SSLError)
# A token's refund: what `acquire` may return, called when the request never reached VirusTotal.
Refund = Callable[[], None]


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: urllib3 keeps the socket's error as the cause, or in
    `args` or `reason` (a proxy's)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
        todo += [item for item in wrapped if isinstance(item, BaseException)]


def _connection_error(exc: BaseException, url: str, timeout: tuple[float, float]) -> VTConnectionError:
    """The typed error for a transport failure, its reason in words, whether it reached VirusTotal."""
    parts = urlsplit(url)
    host = parts.hostname or "VirusTotal"
    address = f"{host}:{parts.port}" if parts.port else host
    causes = list(_causes(exc))

    def found(*kinds: type[BaseException]) -> bool:
        return any(isinstance(cause, kinds) for cause in causes)

    if found(NameResolutionError):
        return VTConnectionError(f"name resolution failed for {host}", reached=False)
    # urllib3 derives a refused or unroutable connection from ConnectTimeoutError too.
    if any(isinstance(c, ConnectTimeoutError) and not isinstance(c, NewConnectionError) for c in causes):
        return VTConnectionError(f"no connection to {address} within {timeout[0]:g} s", reached=False)
    if found(ssl.SSLCertVerificationError):
        return VTConnectionError(f"the certificate of {host} could not be verified", reached=False)
    if found(SSLError, ssl.SSLError):
        return VTConnectionError(f"the secure connection to {host} failed", reached=False)
    if found(ProxyError):
        return VTConnectionError("the proxy could not be reached", reached=False)
    if found(ConnectionRefusedError):
        return VTConnectionError(f"connection refused by {address}", reached=False)
    if found(NewConnectionError):
        return VTConnectionError(f"no route to {address}", reached=False)
    if found(ReadTimeoutError):
        return VTConnectionError(f"no answer within {timeout[1]:g} s", reached=True)
    return VTConnectionError("the connection was dropped before the answer came", reached=True)


def _segment(value: str) -> str:
    return quote(value, safe="")


class VirusTotalClient:
    """Calls VirusTotal with one API key.

    `acquire` is the caller's quota gate: it runs right before every HTTP request (both requests
    of a large upload) and whatever it raises reaches the caller unchanged. It may return a
    refund, called when the request then never reached VirusTotal (VTConnectionError with
    `reached` False): VirusTotal counted nothing, so neither should the budget.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = (5.0, 60.0),
        acquire: Callable[[], Refund | None] | None = None,
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._acquire = acquire

    def __repr__(self) -> str:
        return f"VirusTotalClient(base_url={self.base_url!r})"

    def _request(self, method: str, target: str, *, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        url = target if target.startswith(("http://", "https://")) else self.base_url + target
        refund = self._acquire() if self._acquire is not None else None
        parts = urlsplit(url)
        pools = _shared_pools()
        try:
            # No redirects: following one would replay the x-apikey header to whatever host it names.
            response = pools.for_url(parts.scheme, parts.netloc).request(
                method,
                url,
                body=body,
                headers={**pools.headers, "x-apikey": self._api_key, **(headers or {})},
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except _TRANSPORT_ERRORS as exc:
            error = _connection_error(exc, url, self.timeout)
            # The library's text (hosts, pools, errno) is for the operator, not for API answers.
            detail = str(exc)
            for secret in (parts.query, "" if url.startswith(self.base_url) else parts.path):
                detail = detail.replace(secret, "[hidden]") if secret else detail
            VT_REQUESTS.inc(self._endpoint(method, url), error.code)
            # A one-time upload URL is a credential of its own and is not named.
            path = _path_of(url[len(self.base_url) :]) if url.startswith(self.base_url) else "(upload URL)"
            log.warning("VirusTotal %s %s: %s (%s: %s)", method, path, error, type(exc).__name__, detail)
            if refund is not None and not error.reached:
                self._refund(refund)
            raise error from exc
        status = response.status
        if not 200 <= status < 300:
            raise self._logged(method, url, self._redacted(error_from_response(status, response.data)))
        try:
            answer = json.loads(response.data)
        except ValueError:
            raise UnknownVTError("answer is not JSON", code="InvalidResponse", http_status=status) from None
        if not isinstance(answer, dict):
            raise UnknownVTError("answer is not a JSON object", code="InvalidResponse", http_status=status)
        VT_REQUESTS.inc(self._endpoint(method, url), "ok")
        return answer

    def _data(self, method: str, target: str, **kwargs: Any) -> Any:
        body = self._request(method, target, **kwargs)
        if "data" not in body:
            raise UnknownVTError("answer has no data member", code="InvalidResponse", http_status=200)
        return body["data"]

    def get_file(self, file_hash: str) -> dict[str, Any]:
        """The file object for an md5, sha1 or sha256; NotFoundError if VirusTotal never saw it."""
        return self._data("GET", f"/files/{_segment(file_hash)}")

    def upload_file(self, source: str | os.PathLike[str] | BinaryIO, filename: str | None = None) -> str:
        """Upload a file, streamed from disk or from a seekable binary stream (sent from its
        start, so a second call with the same stream sends it whole again), and return the
        analysis id.

        Files over DIRECT_UPLOAD_MAX_BYTES go through a one-time upload URL (two requests).
        """
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as stream:
                return self.upload_file(stream, filename or Path(source).name)
        size = source.seek(0, os.SEEK_END)
        if size > MAX_UPLOAD_BYTES:
            raise FileTooLargeError(f"{size} bytes is over VirusTotal's {MAX_UPLOAD_BYTES // MiB} MB upload limit")
        target = "/files" if size <= DIRECT_UPLOAD_MAX_BYTES else self._upload_url()
        source.seek(0)
        # urllib3 2 renders the part header as `filename="<name>"` (WHATWG form, quotes and
        # line breaks percent-encoded); VirusTotal rejects the RFC 5987 `filename*=` form.
        encoder = MultipartEncoder(fields={"file": (filename or "file", source, "application/octet-stream")})
        # Its length is known, so urllib3 sends it as it reads it (16 KiB at a time), not chunk-encoded.
        headers = {"Content-Type": encoder.content_type, "Content-Length": str(encoder.len)}
        data = self._data("POST", target, body=encoder, headers=headers)
        return _analysis_id(data)

    def _upload_url(self) -> str:
        url = self._data("GET", "/files/upload_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UnknownVTError("upload_url answer is not a URL", code="InvalidResponse", http_status=200)
        return url

    def rescan(self, sha256: str) -> str:
        """Ask VirusTotal to analyse a file it already has again; returns the analysis id."""
        return _analysis_id(self._data("POST", f"/files/{_segment(sha256)}/analyse"))

    def get_analysis(self, analysis_id: str) -> dict[str, Any]:
        """The whole analysis body: `data` (status, stats, results) and `meta` (file_info or url_info)."""
        return self._request("GET", f"/analyses/{_segment(analysis_id)}")

    def get_analysis_item(self, analysis_id: str) -> dict[str, Any]:
        """The file or URL object the analysis is about."""
        return self._data("GET", f"/analyses/{_segment(analysis_id)}/item")

    def get_url(self, url: str) -> dict[str, Any]:
        return self._data("GET", f"/urls/{url_id(url)}")

    def scan_url(self, url: str) -> str:
        """Submit a URL for analysis; returns the analysis id."""
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return _analysis_id(self._data("POST", "/urls", body=urlencode({"url": url}), headers=form))

    def get_domain(self, domain: str) -> dict[str, Any]:
        return self._data("GET", f"/domains/{_segment(domain)}")

    def get_ip(self, ip: str) -> dict[str, Any]:
        return self._data("GET", f"/ip_addresses/{_segment(ip)}")

    def validate_key(self) -> bool:
        """Whether VirusTotal accepts the key, checked with one cheap call (GET /ip_addresses/8.8.8.8,
        which costs one request of the key's quota).

        False only when the key is rejected (InvalidKeyError). Other failures (VTConnectionError,
        QuotaExceededError, ...) propagate: they mean "could not check", not "bad key".
        """
        try:
            self.get_ip("8.8.8.8")
        except InvalidKeyError:
            return False
        return True

    def _logged(self, method: str, url: str, error: VirusTotalError) -> VirusTotalError:
        """Every failed call, at a level an operator sees (an unknown hash, 404, is an answer, not a
        failure); the task's context (scan or lookup id, request id) rides along. The key is in a
        header, never in the line; a one-time upload URL is a credential of its own and is not named."""
        path = url[len(self.base_url) :] if url.startswith(self.base_url) else "(upload URL)"
        VT_REQUESTS.inc(self._endpoint(method, url), error.code)
        log.log(
            logging.INFO if error.http_status == 404 else logging.WARNING,
            "VirusTotal %s %s failed: %s",
            method,
            _path_of(path),
            error.code,
            extra={
                "vt_method": method,
                "vt_path": _path_of(path),
                "vt_status": error.http_status,
                "vt_error": error.code,
                "vt_message": error.message if url.startswith(self.base_url) else None,
            },
        )
        return error

    def _endpoint(self, method: str, url: str) -> str:
        if not url.startswith(self.base_url):
            return f"{method} (upload URL)"
        return f"{method} /{url[len(self.base_url) :].lstrip('/').split('/', 1)[0].split('?', 1)[0]}"

    @staticmethod
    def _refund(refund: Refund) -> None:
        # The connection error is what the caller must hear; a budget that keeps a token it
        # could have had back only paces the next call a little more.
        try:
            refund()
        except Exception:
            log.warning("could not give back the quota token of a request that never left", exc_info=True)

    def _redacted(self, error: VirusTotalError) -> VirusTotalError:
        """The error without the key: its text ends up in logs, `last_error` and scan or lookup
        errors, and an answer (a proxy's error page, say) may echo the request's headers."""
        if self._api_key and self._api_key in f"{error.message} {error.code}":
            error.message = error.message.replace(self._api_key, "[redacted]")
            error.code = error.code.replace(self._api_key, "[redacted]")
            error.args = (error.message,)
        return error


def _analysis_id(data: Any) -> str:
    analysis_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(analysis_id, str) or not analysis_id:
        raise UnknownVTError("answer carries no analysis id", code="InvalidResponse", http_status=200)
    return analysis_id


def _path_of(url: str) -> str:
    return url.split("?", 1)[0]

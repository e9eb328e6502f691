"""The load generator's HTTP client: the standard library's http.client on gevent's sockets, with
kept-alive connections, about a tenth of the CPU of `requests` per request. The generator runs on
the same cores as the service it measures, so every millisecond it spends is one the service
cannot."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

# gunicorn closes a kept-alive connection after `keepalive` (5 s) idle: reuse well within that, so
# a request is never sent on a connection the server is closing.
REUSE_WITHIN_SECONDS = 2.0


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Http:
    """Requests to one host and port; connections are taken from a stack of idle ones."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self.opened = 0

    def _connection(self) -> http.client.HTTPConnection:
        now = time.monotonic()
        while self._idle:
            since, conn = self._idle.pop()
            if now - since < REUSE_WITHIN_SECONDS:
                return conn
            conn.close()
        self.opened += 1
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            answer = Answer(response.status, response.read())
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._idle.append((time.monotonic(), conn))
        return answer

    def get(self, path: str, headers: dict | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post_json(self, path: str, data: dict, headers: dict | None = None) -> Answer:
        return self.request(
            "POST", path, json.dumps(data).encode(), {**(headers or {}), "Content-Type": "application/json"}
        )

    def post_file(self, path: str, name: str, content: bytes, headers: dict | None = None) -> Answer:
        boundary = os.urandom(12).hex()
        body = b"".join(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode(),
                b"Content-Type: application/octet-stream\r\n\r\n",
                content,
                f"\r\n--{boundary}--\r\n".encode(),
            )
        )
        content_type = f"multipart/form-data; boundary={boundary}"
        return self.request("POST", path, body, {**(headers or {}), "Content-Type": content_type})

    def lines(self, path: str, headers: dict | None = None, timeout: float | None = None) -> tuple[int, Iterator[str]]:
        """A streaming GET on a connection of its own: the status and the body's lines."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or self.timeout)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()

        def read() -> Iterator[str]:
            try:
                while line := response.readline():
                    yield line.decode().rstrip("\r\n")
            finally:
                conn.close()

        if response.status != 200:
            body = response.read()
            conn.close()
            return response.status, iter([body.decode(errors="replace")])
        return response.status, read()

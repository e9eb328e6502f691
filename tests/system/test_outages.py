"""No route answers 500 because Redis or the database blinked: the routes that need the missing
store answer 503 with Retry-After in the error envelope, the others answer as well as they can.

gunicorn serves the app against a Redis of the test's own (cache, rate limits, quota counters,
broker) and, for the database outage, reaches PostgreSQL through a relay the test can cut.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from urllib.parse import urlparse

import pytest
import requests

from tests.fixtures.app import database_is_postgres
from tests.lookups.helpers import WebServer


def get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=30, **kwargs)


def post(url: str, **kwargs) -> requests.Response:
    return requests.post(url, timeout=30, **kwargs)


def sign_in(server: WebServer, user) -> dict[str, str]:
    r = post(f"{server.url}/api/auth/login", json={"username": user.username, "password": user.password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def assert_unavailable(response: requests.Response, code: str = "SERVICE_UNAVAILABLE") -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert set(error) == {"code", "message", "type", "details"}
    assert (error["code"], error["type"]) == (code, "ServiceUnavailableError")


def test_routes_answer_without_500_while_redis_is_down(user, add_key, vt_emulator, start_web, private_redis):
    key = add_key(user)
    server = start_web(**private_redis.service_env(0))
    headers = sign_in(server, user)
    assert get(f"{server.url}/api/keys/", headers=headers).json()["api_keys"][0]["usage"] is not None

    private_redis.kill()

    keys = get(f"{server.url}/api/keys/", headers=headers)
    assert keys.status_code == 200, keys.text
    assert [(k["id"], k["usage"]) for k in keys.json()["api_keys"]] == [(key["id"], None)]
    files = {"file": ("blink.bin", io.BytesIO(b"uploaded while Redis is down"), "application/octet-stream")}
    uploaded = post(f"{server.url}/api/files/upload", files=files, headers=headers)
    assert uploaded.status_code == 201, uploaded.text
    bulk = post(f"{server.url}/api/bulk", files={"file": ("iocs.txt", b"example.com\n")}, headers=headers)
    assert bulk.status_code == 202, bulk.text
    # A key check is a VirusTotal request, which cannot be counted against the key's budget now.
    check = post(f"{server.url}/api/keys/validate", json={"key_value": key["key_value"]}, headers=headers)
    assert_unavailable(check, "QUOTA_STORE_UNAVAILABLE")
    assert vt_emulator.total(key["key_value"]) == 1  # only the check when the key was added

    private_redis.start()
    check = post(f"{server.url}/api/keys/validate", json={"key_value": key["key_value"]}, headers=headers)
    assert check.status_code == 200 and check.json()["valid"] is True, check.text


class Relay:
    """A TCP relay to PostgreSQL that the test can cut (every connection dropped, new ones
    refused) and mend, as a network blink or a database restart would look to the app."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._listener, self._sockets = None, []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_a_database_outage_is_503_with_retry_after_not_500(test_env, user, start_web):
    if not database_is_postgres():
        pytest.skip("a database outage: needs TEST_DATABASE_URL on PostgreSQL")
    database = urlparse(test_env["DATABASE_URL"])
    relay = Relay((database.hostname or "127.0.0.1", database.port or 5432))
    relay.open()
    relayed = database._replace(netloc=f"{database.username}@127.0.0.1:{relay.port}").geturl()
    try:
        # AUTH_CACHE_SECONDS=0: every request checks its token in the database, as it does once the
        # process's 2 s memory of a check is over (within it, /api/auth/profile needs no database).
        server = start_web(DATABASE_URL=relayed, AUTH_CACHE_SECONDS="0")
        headers = sign_in(server, user)
        assert get(f"{server.url}/api/keys/", headers=headers).status_code == 200

        relay.cut()
        for path in ("/api/keys/", "/api/files/", "/api/auth/profile"):
            assert_unavailable(get(f"{server.url}{path}", headers=headers))
        login = post(f"{server.url}/api/auth/login", json={"username": user.username, "password": "x" * 12})
        assert_unavailable(login)

        relay.open()
        assert get(f"{server.url}/api/keys/", headers=headers).status_code == 200
    finally:
        relay.cut()

"""Shared steps for lookup tests: ask through the API, wait for a worker, store known reports,
run a real web server and read its event streams."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.fixtures.processes import spawn

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def check(client, user, ioc: str, **fields):
    return client.post("/api/check_ioc", json={"ioc": ioc, **fields}, headers=user.headers)


def wait_for_lookup(client, user, lookup_id: str, limit: float = 45.0) -> dict:
    """Poll until the lookup settles; the bound only stops a hung test."""
    deadline = time.monotonic() + limit
    while True:
        body = client.get(f"/api/lookup/{lookup_id}", headers=user.headers).json
        if body["status"] != "pending":
            return body
        assert time.monotonic() < deadline, f"lookup did not settle: {body}"
        time.sleep(0.1)


def wait_for_job(client, user, job_id: str, limit: float = 55.0, until=None) -> dict:
    until = until or (lambda body: body["status"] in ("completed", "cancelled", "failed"))
    deadline = time.monotonic() + limit
    while True:
        body = client.get(f"/api/bulk/{job_id}", headers=user.headers).json
        if until(body):
            return body
        assert time.monotonic() < deadline, f"job did not get there: {body}"
        time.sleep(0.1)


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324  VirusTotal's identifier, not a security use


def sha1(content: bytes) -> str:
    return hashlib.sha1(content).hexdigest()  # noqa: S324


def domain_report(domain: str, malicious: int = 0, harmless: int = 60) -> dict:
    """A domain object as VirusTotal shapes it, for reports the store already holds."""
    stats = {"harmless": harmless, "malicious": malicious, "suspicious": 0, "undetected": 10, "timeout": 0}
    return {"type": "domain", "id": domain, "attributes": {"last_analysis_stats": stats, "reputation": 0}}


def store_reports(app, reports: dict[tuple[str, str], dict]) -> None:
    """Put reports in our database as if VirusTotal had answered just now."""
    from scanner.extensions import db
    from scanner.virustotal.store import save_report

    with app.app_context():
        for (vt_type, value), report in reports.items():
            save_report(vt_type, value, report)
        db.session.commit()
        db.session.remove()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """gunicorn (gevent workers, as in production) serving the app on a free port, in a subprocess that
    shares the test run's database, broker and emulator through the environment."""

    def __init__(self, log_dir: Path, env: dict[str, str], config: str = "gunicorn.conf.py", workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115  closed in stop()
        args = [GUNICORN, "wsgi:app", "--config", config, "--bind", f"127.0.0.1:{self.port}"]
        args += ["--workers", str(workers)]
        self.proc = spawn(args, self._log, env)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.logs()}")
            try:
                if requests.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            # The socket listens before the worker has loaded the app: a first request may wait.
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn not ready:\n{self.logs()}")

    def logs(self) -> str:
        return self.logs_all()[-6000:]

    def logs_all(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def kill(self) -> None:
        """End it as a crash would: no worker gets to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


@dataclass
class Event:
    event: str | None
    data: object = None
    comment: str | None = None


@dataclass
class EventStream:
    """A Server-Sent Events stream read line by line over a real HTTP connection."""

    response: requests.Response
    events: list[Event] = field(default_factory=list)
    _reader: Iterator[Event] | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator[Event]:
        # One reader for the stream's whole life: a second `iter_lines` would lose what the first
        # had buffered, so reading on after a first event must resume the same reader.
        if self._reader is None:
            self._reader = self._read()
        return self._reader

    def _read(self) -> Iterator[Event]:
        event, data = None, []
        for raw in self.response.iter_lines(decode_unicode=True):
            if raw is None:
                continue
            if raw == "":
                if event is not None or data:
                    parsed = Event(event, json.loads("\n".join(data)) if data else None)
                    self.events.append(parsed)
                    yield parsed
                event, data = None, []
            elif raw.startswith(":"):
                comment = Event(None, comment=raw[1:].strip())
                self.events.append(comment)
                yield comment
            elif raw.startswith("event:"):
                event = raw[len("event:") :].strip()
            elif raw.startswith("data:"):
                data.append(raw[len("data:") :].strip())

    def until(self, name: str, limit: int = 10000) -> list[Event]:
        """Read until an event called `name` (inclusive); returns the events read, comments too."""
        seen = []
        for item in self:
            seen.append(item)
            if item.event == name or len(seen) >= limit:
                return seen
        return seen

    def close(self) -> None:
        self.response.close()


def open_stream(url: str, token: str, timeout: float = 30.0) -> EventStream | requests.Response:
    response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=timeout)
    if response.status_code != 200:
        return response
    return EventStream(response)


# Long enough for a worker to start and finish under load; a stream that goes quiet for this long fails.
READ_TIMEOUT = 60.0


def stream(server, path: str, user, timeout: float = READ_TIMEOUT) -> EventStream:
    opened = open_stream(f"{server.url}{path}", user.access_token, timeout=timeout)
    assert isinstance(opened, EventStream), f"{opened.status_code}: {opened.text}"
    assert opened.response.headers["Content-Type"].startswith("text/event-stream")
    return opened


def named(items: list[Event]) -> list[Event]:
    """Events, without heartbeat comments."""
    return [item for item in items if item.event is not None]


def first_event(opened: EventStream) -> Event:
    return next(item for item in opened if item.event is not None)


def submit_bulk(server, user, text: str) -> dict:
    files = {"file": ("iocs.txt", text.encode(), "text/plain")}
    response = requests.post(f"{server.url}/api/bulk", files=files, headers=user.headers, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()

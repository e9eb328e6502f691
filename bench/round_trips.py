"""What one authenticated read costs in round trips: SQL statements, connection checkouts and the
pings among them (each a round trip of its own), and Redis round trips (a pipeline is one), counted for one request
once the process is warm. The read's own query is in the count; everything else is overhead:
token verification, revocation, the rate limiter and its headers, request counting.

And what a worker spends on one scan, of a file VirusTotal knows, of one it does not, and of one
whose report we hold already (a second scan of the first): its tasks
(`pipeline.advance` calls, as the Celery task makes them, until the scan is finished) and their
commits and statements.

In this process, on PostgreSQL + Redis, through the Flask test client (the same app the web
process serves), with the VirusTotal emulator for the one check_ioc that fills the cache:

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scanner_bench \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/round_trips.py

BENCH_ROOT counts another checkout's code (before a change). The baseline of each row is the same
request's count with the per-process token cache off (AUTH_CACHE_SECONDS=0), measured in the same
run. Not run by the test suite.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(os.environ.get("BENCH_ROOT") or Path(__file__).resolve().parents[1]).resolve()
sys.path.insert(0, str(ROOT))

import redis.connection  # noqa: E402
import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import event  # noqa: E402

PASSWORD = "Correct-Horse-42-trips"
EMULATOR_KEY = "bench-trips-emulator-key"
READS = 20  # requests per figure; the figure is the count of the last one (a warm process)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.on = False

    def add(self, what: str) -> None:
        if self.on:
            self.counts[what] += 1


TALLY = Tally()
_send = redis.connection.AbstractConnection.send_packed_command


def _counted_send(self, command, check_health=True):
    TALLY.add("redis round trips")
    return _send(self, command, check_health)


@contextmanager
def counting():
    TALLY.counts.clear()
    TALLY.on = True
    try:
        yield TALLY.counts
    finally:
        TALLY.on = False


def _instrument(engine) -> None:
    event.listen(engine, "before_cursor_execute", lambda *a: TALLY.add("SQL statements"))
    event.listen(engine, "checkout", lambda *a: TALLY.add("connection checkouts"))
    ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        TALLY.add("pings")
        return ping(dbapi_connection)

    engine.dialect.do_ping = counted_ping
    event.listen(engine, "commit", lambda *a: TALLY.add("commits"))
    redis.connection.AbstractConnection.send_packed_command = _counted_send


def _emulator() -> tuple[subprocess.Popen, str]:
    args = [sys.executable, "-m", "vt_emulator", "--port", "0", "--quiet", "--key", f"{EMULATOR_KEY}:100000:1000000",
            "--queued-seconds", "0", "--progress-seconds", "0"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def _app(vt_url: str, database: str, redis_url: str):
    os.environ.update(
        INSTANCE_DIR=tempfile.mkdtemp(prefix="bench-trips-"),
        DATABASE_URL=database,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL="memory://",  # the upload's scan is queued and left: no worker runs here
        SECRET_KEY=secrets.token_urlsafe(48),
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        VT_API_URL=vt_url,
        LOG_LEVEL="WARNING",
        RATE_LIMIT_PER_MINUTE="100000000",
        RATE_LIMIT_PER_HOUR="1000000000",
    )
    from scanner import create_app
    from scanner.extensions import db

    app = create_app("production")
    with app.app_context():
        db.create_all()
        _instrument(db.engine)
    return app


def _signed_in(client) -> dict[str, str]:
    """A new user with the emulator's key (a budget no run spends): their request headers."""
    name = f"trips_{uuid.uuid4().hex[:8]}"
    account = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    assert client.post("/api/auth/register", json=account).status_code == 201
    token = client.post("/api/auth/login", json={"username": name, "password": PASSWORD}).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    key = {"name": "k", "key_value": EMULATOR_KEY, "per_minute": 100_000, "per_day": 10_000_000}
    assert client.post("/api/keys/", json=key, headers=headers).status_code == 201
    return headers


def _requests(client) -> dict:
    headers = _signed_in(client)
    upload = client.post("/api/files/upload", data={"file": (io.BytesIO(os.urandom(512)), "a.bin")}, headers=headers)
    scan_id = upload.json["scan"]["scan_id"]
    return {
        "status read": lambda: client.get(f"/api/scan/{scan_id}/status", headers=headers),
        "history page": lambda: client.get("/api/scan/results", headers=headers),
        "cached check_ioc": lambda: client.post("/api/check_ioc", json={"ioc": "example.com"}, headers=headers),
    }


def _count(app) -> dict[str, Counter]:
    reads = _requests(app.test_client())
    found = {}
    for figure, read in reads.items():
        for _ in range(READS):
            assert read().status_code in (200, 202)
        with counting() as counts:
            assert read().status_code == 200
        found[figure] = Counter(counts)
    return found


def _scan_costs(app, vt_url: str) -> dict[str, Counter]:
    """A worker's steps for a scan of a file VirusTotal knows, of a new one, and of the first again."""
    from scanner.extensions import db
    from scanner.scans import pipeline

    client = app.test_client()
    headers = _signed_in(client)
    known, new = os.urandom(512), os.urandom(512)
    control = vt_url.removesuffix("/api/v3") + "/_emulator/files"
    requests.post(control, data=known, timeout=30).raise_for_status()  # the emulator knows it now
    found = {}
    scans = (("scan, file VirusTotal knows", known), ("scan, new file", new), ("scan, file we hold a report of", known))
    for figure, content in scans:
        upload = client.post("/api/files/upload", data={"file": (io.BytesIO(content), "a.bin")}, headers=headers)
        scan_id = uuid.UUID(upload.json["scan"]["scan_id"])
        with counting() as counts, app.app_context():
            while True:
                counts["tasks"] += 1
                delay = pipeline.advance(scan_id)
                db.session.remove()  # as a Celery task ends
                if delay is None:
                    break
                time.sleep(delay)
        status = client.get(f"/api/scan/{scan_id}/status", headers=headers).json["status"]
        assert status == "completed", status
        found[figure] = Counter(counts)
    return found


def run() -> list[dict]:
    database = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL")
    if not (database and redis_url):
        raise SystemExit("bench/round_trips.py counts PostgreSQL + Redis: set BENCH_DATABASE_URL and BENCH_REDIS_URL")
    proc, vt_url = _emulator()
    try:
        app = _app(vt_url, database, redis_url)
        warm = _count(app)
        scans = _scan_costs(app, vt_url)
        cold = None
        if "AUTH_CACHE_SECONDS" in app.config:
            app.config["AUTH_CACHE_SECONDS"] = 0
            cold = _count(app)
    finally:
        proc.terminate()
        proc.wait(10)
    from figures import figure

    rows = []
    for name, counts in warm.items():
        for what in ("SQL statements", "connection checkouts", "pings", "commits", "redis round trips"):
            baseline = cold[name][what] if cold else None
            rows.append(figure(f"{name}: {what}", "per request", counts[what], baseline=baseline))
    for name, counts in scans.items():
        rows += [figure(f"{name}: {what}", "per scan", counts[what]) for what in ("tasks", "commits", "SQL statements")]
    return rows


if __name__ == "__main__":
    print(f"checkout {ROOT}; baseline: the token cache off (AUTH_CACHE_SECONDS=0)")
    for row in run():
        base = "" if row["baseline"] is None else f"   (cache off: {row['baseline']})"
        print(f"{row['figure']:<58} {row['value']:>3}{base}")

"""Authenticated reads through the real web process, as a ratio of bare Flask under the same
gunicorn settings (issue 18, target 1).

Starts the Procfile's web process (gunicorn with gunicorn.conf.py; the worker finishes the one scan
the status read asks about) on PostgreSQL + Redis, with the VirusTotal emulator as VirusTotal, and
beside it a bare Flask app (bench/apps/bare_flask.py) under the same gunicorn settings, all with
the one process launcher (scripts/processes.py). Then `wrk`
drives each for a few seconds, in interleaved rounds, and the medians are compared:

- `GET /api/scan/{id}/status` (target >= 0.5 of bare Flask)
- `GET /api/scan/results` (a history page; target >= 0.3)
- `POST /api/check_ioc` answered from the cache (target >= 0.3)

Rate limiting stays on (with a budget no run can spend), as do authentication and revocation.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scanner_bench \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/reads.py [--seconds 5] [--rounds 3]

BENCH_ROOT measures another checkout's code with this script (its Procfile, its app). The
database's tables are created by the migrations and left in place; each run signs up a user of
its own. The Redis database is flushed first (it is the broker too: a queue left by another run
would hold up the one scan): point BENCH_REDIS_URL at a scratch one. Needs wrk (apt-get install
wrk). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from cryptography.fernet import Fernet

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

from processes import Processes, free_port, wait_until  # noqa: E402

ROOT = Path(os.environ.get("BENCH_ROOT") or HERE.parent).resolve()
PASSWORD = "Correct-Horse-42-reads"
EMULATOR_KEY = "bench-reads-emulator-key"
CONNECTIONS, THREADS = 32, 2
# figure, what is read, target ratio of bare Flask
FIGURES = (
    ("status read", "status", 0.5),
    ("history page", "history", 0.3),
    ("cached check_ioc", "check_ioc", 0.3),
)


@dataclass
class Run:
    requests_per_second: float
    p99_ms: float
    errors: int  # non-2xx answers and socket errors: any makes the run worthless


def _wrk(url: str, seconds: float, headers: dict[str, str], script: Path | None = None) -> Run:
    args = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Run(rps, float(p99.group(1)) * scale, errors)


def _post_script(workdir: Path, body: str) -> Path:
    script = workdir / "check_ioc.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.body = \'{body}\'\nwrk.headers["Content-Type"] = "application/json"\n')
    return script


def _ok(response: requests.Response, status: int = 200) -> dict:
    if response.status_code != status:
        raise SystemExit(f"{response.request.method} {response.url}: {response.status_code} {response.text[:300]}")
    return response.json()


def _prepare(api: str) -> tuple[dict[str, str], str]:
    """A user with a key, one finished scan and one cached indicator answer: (headers, scan id)."""
    name = f"reads_{uuid.uuid4().hex[:8]}"
    http = requests.Session()
    _ok(
        http.post(
            f"{api}/auth/register", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        ),
        201,
    )
    token = _ok(http.post(f"{api}/auth/login", json={"username": name, "password": PASSWORD}))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    budget = {"per_minute": 100_000, "per_day": 10_000_000}  # the public tier's 4 a minute is one scan's worth
    key = {"name": "emulator", "key_value": EMULATOR_KEY, **budget}
    _ok(http.post(f"{api}/keys/", json=key, headers=headers), 201)
    uploaded = _ok(
        http.post(f"{api}/files/upload", files={"file": ("sample.txt", os.urandom(2048))}, headers=headers), 201
    )
    scan_id = uploaded["scan"]["scan_id"]

    def finished() -> bool:
        return _ok(http.get(f"{api}/scan/{scan_id}/status", headers=headers))["status"] in ("completed", "not_found")

    wait_until(finished, "the scan", 120)
    for _ in range(2):  # the first asks VirusTotal; the second is the cached answer measured
        answer = http.post(f"{api}/check_ioc", json={"ioc": "example.com"}, headers=headers)
        if answer.status_code not in (200, 202):
            raise SystemExit(f"check_ioc: {answer.status_code} {answer.text[:300]}")
    # A key's budget spent by an earlier run on the same stores would leave it pending, measured
    # as if it were the cached answer.
    if answer.status_code != 200 or answer.json().get("source") != "cache":
        raise SystemExit(f"check_ioc is not answered from the cache: {answer.status_code} {answer.text[:300]}")
    return headers, scan_id


def _measure(targets: dict[str, tuple[str, dict, Path | None]], seconds: float, rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in targets}
    for url, headers, script in targets.values():  # warm both sides once, not timed
        _wrk(url, 1, headers, script)
    for _ in range(rounds):
        for name, (url, headers, script) in targets.items():
            runs[name].append(_wrk(url, seconds, headers, script))
    return runs


def _rows(runs: dict[str, list[Run]]) -> list[dict]:
    bare = statistics.median(r.requests_per_second for r in runs["bare"])
    rows = [
        {
            "figure": "bare Flask (same gunicorn settings)",
            "unit": "req/s",
            "value": round(bare, 1),
            "baseline": None,
            "ratio": None,
            "target": None,
            "met": None,
        }
    ]
    for figure, name, target in FIGURES:
        value = statistics.median(r.requests_per_second for r in runs[name])
        ratio = value / bare
        failed = sum(r.errors for r in runs[name])
        rows.append(
            {
                "figure": f"{figure} (p99 {statistics.median(r.p99_ms for r in runs[name]):.0f} ms)",
                "unit": "req/s",
                "value": round(value, 1),
                "baseline": round(bare, 1),
                "ratio": round(ratio, 3),
                "target": target,
                "met": ratio >= target and failed == 0,
                **({"errors": failed} if failed else {}),
            }
        )
    return rows


def run(seconds: float = 5, rounds: int = 3) -> list[dict]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench/reads.py needs wrk (apt-get install wrk)")
    database = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL") or os.environ.get("REDIS_URL")
    if not (database and redis_url):
        raise SystemExit("bench/reads.py measures PostgreSQL + Redis: set BENCH_DATABASE_URL and BENCH_REDIS_URL")
    redis.Redis.from_url(redis_url).flushdb()
    workdir = Path(tempfile.mkdtemp(prefix="bench-reads-"))
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        # Limits stay on and are counted; no run can spend them.
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "RATE_LIMIT_PER_HOUR": "1000000000",
        "SCAN_POLL_INTERVALS": "0.2",
        "BROKER_POLL_SECONDS": "0.1",
    }
    emulator = ["--key", f"{EMULATOR_KEY}:1000000:100000000", "--queued-seconds", "0", "--progress-seconds", "0"]
    web_port, vt_port, bare_port = free_port(), free_port(), free_port()
    env = {**os.environ, "INSTANCE_DIR": str(workdir), "PORT": str(web_port), **env}
    env["VT_API_URL"] = f"http://127.0.0.1:{vt_port}/api/v3"
    with open(workdir / "bench.log", "w") as log:
        service = Processes(env, log, root=ROOT)
        env["PATH"] = f"{service.bin}{os.pathsep}{os.environ.get('PATH', '')}"  # the Procfile names gunicorn bare
        bare = Processes(env, log)  # this checkout's bare app, under the same settings
        try:
            service.emulator("--port", str(vt_port), "--quiet", *emulator)
            service.migrate()
            service.procfile("web", "worker")
            bare_args = [str(bare.bin / "gunicorn"), "bench.apps.bare_flask:app", "--config", "gunicorn.conf.py"]
            bare.start("bare", [*bare_args, "--bind", f"127.0.0.1:{bare_port}"])
            api = f"http://127.0.0.1:{web_port}/api"
            bare_url = f"http://127.0.0.1:{bare_port}/status"
            wait_until(lambda: requests.get(f"{api}/health/ready", timeout=5).ok, "the service", 120)
            wait_until(lambda: requests.get(bare_url, timeout=2).ok, "bare Flask")
            headers, scan_id = _prepare(api)
            targets = {
                "bare": (bare_url, {}, None),
                "status": (f"{api}/scan/{scan_id}/status", headers, None),
                "history": (f"{api}/scan/results", headers, None),
                "check_ioc": (f"{api}/check_ioc", headers, _post_script(workdir, '{"ioc": "example.com"}')),
            }
            runs = _measure(targets, seconds, rounds)
        finally:
            bare.stop()
            service.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    return _rows(runs)


def _table(rows: list[dict]) -> str:
    columns = ("figure", "unit", "value", "baseline", "ratio", "target", "met")
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in rows:
        cells = ("" if row.get(c) is None else str(row[c]) for c in columns)
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)))
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per figure (median reported)")
    args = parser.parse_args()
    started = time.monotonic()
    load = os.getloadavg()
    table = _table(run(args.seconds, args.rounds))
    print(f"checkout {ROOT}, {os.cpu_count()} CPUs, load before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(table)
    print(f"({time.monotonic() - started:.0f} s)")

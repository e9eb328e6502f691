"""Scan throughput of the whole pipeline against a zero-latency VirusTotal emulator, beside the
same files scanned one after another by calling the VirusTotal client directly.

Half the files are already known to the emulator (one lookup should settle them), half are new
(lookup, upload, poll). The service runs as deployed (scripts/stack.py): the Procfile's web
process and its worker (WORKER_CONCURRENCY=2 processes), with the emulator as its VirusTotal, on
PostgreSQL and Redis when BENCH_DATABASE_URL and BENCH_REDIS_URL are set (that database is emptied
and that Redis database flushed: point them at scratch ones), else embedded (SQLite). The files are uploaded and their
scans requested through the API while the workers' consumer is paused (Celery's
cancel_consumer, with Redis as the broker); the clock starts when it resumes and stops when the
last scan is finished, so the figure is the workers' throughput, not the web process's. Target:
50 scans/s, at most 20 ms of worker CPU a scan, 1 VirusTotal request for a known file and 3 for
a new one.

    .venv/bin/python bench/pipeline.py [--files 500]

`run()` is what `make bench` calls (bench/run.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# BENCH_ROOT: measure another checkout's code (run with that checkout's Python) with these scripts.
ROOT = Path(os.environ.get("BENCH_ROOT") or Path(__file__).resolve().parents[1]).resolve()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))  # stack.py: this checkout's
sys.path.insert(0, str(Path(__file__).resolve().parent))  # figures.py

import psutil  # noqa: E402
import requests  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

TERMINAL = ("completed", "failed", "not_found")
PASSWORD = "Correct-Horse-42"
BUDGET = {"per_minute": 100_000, "per_day": 10_000_000}


@dataclass
class Sample:
    name: str
    content: bytes
    path: Path
    known: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def make_samples(workdir: Path, n: int) -> list[Sample]:
    folder = workdir / "files"
    folder.mkdir()
    samples = []
    for i in range(n):
        content = f"bench sample {i}\n".encode() + os.urandom(512 + (i * 37) % 3584)
        path = folder / f"sample-{i:04d}.bin"
        path.write_bytes(content)
        samples.append(Sample(path.name, content, path, known=i % 2 == 0))
    return samples


class EmulatorControl:
    """The emulator's control surface, at `url` (its base URL, ending in /api/v3)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.control = self.url.removesuffix("/api/v3") + "/_emulator"
        self.http = requests.Session()

    def _post(self, path: str, **kwargs) -> dict:
        r = self.http.post(f"{self.control}/{path}", timeout=30, **kwargs)
        r.raise_for_status()
        return r.json()

    def add_key(self, key: str, per_minute: int, per_day: int) -> None:
        self._post("keys", json={"key": key, "per_minute": per_minute, "per_day": per_day})

    def add_file(self, content: bytes) -> None:
        self._post("files", data=content)

    def reset(self) -> None:
        self._post("reset")

    def counts(self, key: str) -> dict[str, int]:
        r = self.http.get(f"{self.control}/counts", params={"key": key}, timeout=30)
        r.raise_for_status()
        return r.json()["counts"]


class EmulatorProcess(EmulatorControl):
    """`python -m vt_emulator` in a process of its own (bench/resume.py)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vt_emulator", "--port", "0", "--quiet",
             "--queued-seconds", "0", "--progress-seconds", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        url = self.proc.stdout.readline().strip()  # the base URL, ending in /api/v3
        if not url.startswith("http"):
            raise RuntimeError("the emulator did not start")
        super().__init__(url)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def teach(emulator: EmulatorControl, samples: list[Sample]) -> None:
    for s in samples:
        if s.known:
            emulator.add_file(s.content)


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


# -- baseline: one process, one file at a time -------------------------------------------------


def run_baseline(emulator: EmulatorControl, samples: list[Sample]) -> dict:
    from scanner.virustotal.client import VirusTotalClient
    from scanner.virustotal.errors import NotFoundError

    keys = {True: secrets.token_hex(32), False: secrets.token_hex(32)}
    for key in keys.values():
        emulator.add_key(key, **BUDGET)
    teach(emulator, samples)
    clients = {known: VirusTotalClient(key, base_url=emulator.url, timeout=(5, 60)) for known, key in keys.items()}
    outcomes: Counter[str] = Counter()
    start = time.perf_counter()
    for s in samples:
        client = clients[s.known]
        try:
            client.get_file(s.sha256)
            outcomes["found"] += 1
            continue
        except NotFoundError:
            pass
        analysis_id = client.upload_file(s.path, s.name)
        while client.get_analysis(analysis_id)["data"]["attributes"]["status"] != "completed":
            pass
        outcomes["analysed"] += 1
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "outcomes": dict(outcomes),
        "requests": {known: emulator.counts(key) for known, key in keys.items()},
    }


# -- the pipeline: API in this process, Celery workers in subprocesses --------------------------


def pipeline_env(workdir: Path, emulator_url: str) -> dict[str, str]:
    instance = workdir / "instance"
    env = {
        "SCANNER_CONFIG": "development",
        "INSTANCE_DIR": str(instance),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SECRET_KEY": secrets.token_hex(32),  # required on PostgreSQL (BENCH_DATABASE_URL)
        "VT_API_URL": emulator_url,
        "SCAN_POLL_INTERVALS": "0.2",
        "BROKER_POLL_SECONDS": "0.05",
        "WORKER_HEARTBEAT_SECONDS": "0.5",
        "RATELIMIT_ENABLED": "0",  # the API's own rate limits are not what is measured
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{instance / 'bench.db'}",
    }
    if os.environ.get("BENCH_REDIS_URL"):
        env["REDIS_URL"] = env["CELERY_BROKER_URL"] = os.environ["BENCH_REDIS_URL"]
    else:
        env["CELERY_BROKER_URL"] = f"sqla+sqlite:///{instance / 'broker.sqlite'}"
    return env


def cpu_seconds(pid: int, children: bool = False) -> float:
    process = psutil.Process(pid)
    processes = [process, *(process.children(recursive=True) if children else [])]
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


class Workers:
    def __init__(self, env: dict[str, str], concurrency: int, log_path: Path) -> None:
        self.hostname = f"bench-{uuid.uuid4().hex[:6]}@localhost"
        celery = str(Path(sys.executable).with_name("celery"))
        self.log = log_path.open("w")
        self.proc = subprocess.Popen(
            [celery, "-A", "worker", "worker", "--loglevel", "WARNING", "--concurrency", str(concurrency),
             "-n", self.hostname, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.log_path = log_path

    def wait_ready(self, app, timeout: float = 60) -> None:
        from scanner.extensions import db
        from scanner.system.models import WorkerHeartbeat

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.log_path.read_text()[-3000:]}")
            with app.app_context():
                ready = db.session.get(WorkerHeartbeat, self.hostname) is not None
                db.session.remove()
            if ready:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the worker never reported:\n{self.log_path.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid, children=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def _ok(response, status: int) -> dict:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.path}: {response.status_code} {response.json}")
    return response.json


def fresh_app(workdir: Path, emulator_url: str):
    """The app on empty tables (and an empty Redis), with a signed-in account: (app, client, headers)."""
    os.environ.update(pipeline_env(workdir, emulator_url))
    from scanner import create_app
    from scanner.extensions import db

    app = create_app()
    with app.app_context():
        db.drop_all()
        db.create_all()
    if os.environ.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    client = app.test_client()
    account = {"username": "bench", "email": "bench@example.com", "password": PASSWORD}
    _ok(client.post("/api/auth/register", json=account), 201)
    token = _ok(client.post("/api/auth/login", json={"username": "bench", "password": PASSWORD}), 200)["access_token"]
    return app, client, {"Authorization": f"Bearer {token}"}


class Pause:
    """Holds the workers' consumer of the default queue (Celery's remote control, over Redis)."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self.control = Celery(broker=broker_url).control

    def _each(self, method: str) -> None:
        # limit: return on the Procfile worker's one reply; without it a broadcast waits out its
        # whole timeout, and those ten seconds were inside the measured time.
        answers = getattr(self.control, method)("celery", reply=True, timeout=10, limit=1)
        if not answers:
            raise RuntimeError(f"no worker answered {method}")

    def hold(self) -> None:
        self._each("cancel_consumer")

    def release(self) -> None:
        self._each("add_consumer")


def _finished_counter(database_url: str | None, workdir: Path, user_id: str):
    """A function: how many of the user's scans are finished, read from the database itself (a
    poll through the API would take CPU from the web process, beside the workers)."""
    query = "SELECT count(*) FROM scans WHERE user_id = {} AND status IN ('completed', 'failed', 'not_found')"
    if database_url:
        import psycopg

        conn = psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
        return lambda: conn.execute(query.format("%s"), (user_id,)).fetchone()[0]
    import sqlite3

    conn = sqlite3.connect(workdir / "scanner.db", timeout=30)
    # SQLAlchemy stores UUIDs on SQLite as 32 hex digits.
    return lambda: conn.execute(query.format("?"), (uuid.UUID(user_id).hex,)).fetchone()[0]


def _workers(stack) -> list[psutil.Process]:
    """The Procfile worker's processes (the Celery main process and its pool)."""
    found = []
    for pid in stack.pids():
        for child in psutil.Process(pid).children(recursive=True):
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "celery" in command and " worker" in command:
                found.append(child)
    return found


def _cpu(processes: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


class _Api:
    def __init__(self, base: str) -> None:
        self.base, self.http = base, requests.Session()
        account = {"username": f"bench{uuid.uuid4().hex[:8]}", "password": PASSWORD}
        self.call("POST", "/auth/register", 201, json={**account, "email": f"{account['username']}@example.com"})
        login = self.call("POST", "/auth/login", 200, json=account)
        self.http.headers["Authorization"] = f"Bearer {login['access_token']}"
        self.user_id = login["user"]["id"]

    def call(self, method: str, path: str, status: int, **kwargs) -> dict:
        response = self.http.request(method, self.base + path, timeout=60, **kwargs)
        if response.status_code != status:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()


def _scan_all(stack, samples: list[Sample], workdir: Path) -> dict:
    """The files through the running service; the workers' figures."""
    emulator = EmulatorControl(f"{stack.vt_url}/api/v3")
    api = _Api(stack.api)
    file_ids = {}  # uploaded while the user has no key, so no scan starts with them
    for s in samples:
        file_ids[s.name] = api.call("POST", "/files/upload", 201, files={"file": (s.name, s.content)})["id"]
    keys = {}
    for known in (True, False):
        value = secrets.token_hex(32)
        emulator.add_key(value, **BUDGET)
        body = {"name": "known" if known else "new", "key_value": value, **BUDGET}
        keys[known] = (api.call("POST", "/keys/", 201, json=body)["api_key"]["id"], value)
    teach(emulator, samples)
    redis_url = os.environ.get("BENCH_REDIS_URL")
    pause = Pause(redis_url) if redis_url else None
    if pause is not None:
        pause.hold()
    workers = _workers(stack)
    finished = _finished_counter(os.environ.get("BENCH_DATABASE_URL"), workdir, api.user_id)
    before = {known: emulator.counts(value) for known, (_, value) in keys.items()}
    cpu_before, start = _cpu(workers), time.perf_counter()
    for s in samples:
        api.call("POST", f"/scan/file/{file_ids[s.name]}", 202, json={"api_key_id": keys[s.known][0]})
    if pause is not None:  # the requests are not the workers' time
        cpu_before, start = _cpu(workers), time.perf_counter()
        pause.release()
    while finished() < len(samples):
        time.sleep(0.02)
    seconds, cpu = time.perf_counter() - start, _cpu(workers) - cpu_before
    statuses = api.call("GET", "/scan/results?status=completed&per_page=1", 200)["pagination"]["total_items"]
    return {
        "seconds": seconds,
        "cpu": cpu,
        "completed": statuses,
        "paused": pause is not None,
        "requests": {known: spent(before[known], emulator.counts(value)) for known, (_, value) in keys.items()},
    }


def empty_database(url: str) -> None:
    """A scratch database, emptied: the migrations build it again, as a release does."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def measure(files: int = 500) -> dict:
    """The baseline and the pipeline, on one emulator, in one run."""
    from stack import Stack, free_port

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    env = {
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SCAN_POLL_INTERVALS": "0.2",
        "BROKER_POLL_SECONDS": "0.05",
        "RATELIMIT_ENABLED": "0",  # the API's own rate limits are not what is measured
        "LOG_LEVEL": "WARNING",
        "WORKER_CONCURRENCY": "2",
    }
    if os.environ.get("BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
        empty_database(env["DATABASE_URL"])
    if os.environ.get("BENCH_REDIS_URL"):
        import redis

        redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]).flushdb()  # no message of an earlier run
        env["REDIS_URL"] = env["CELERY_BROKER_URL"] = os.environ["BENCH_REDIS_URL"]
    emulator_args = ["--quiet", "--queued-seconds", "0", "--progress-seconds", "0"]
    try:
        samples = make_samples(workdir, files)
        with (
            (workdir / "stack.log").open("w") as log,
            Stack(workdir, log, web_port=free_port(), vt_port=free_port(), emulator_args=emulator_args, env=env,
                  root=ROOT, entries=("web", "worker")) as stack,
        ):  # fmt: skip
            emulator = EmulatorControl(f"{stack.vt_url}/api/v3")
            baseline = run_baseline(emulator, samples)
            emulator.reset()
            pipeline = _scan_all(stack, samples, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"samples": samples, "baseline": baseline, "pipeline": pipeline}


def _per_scan(requests: dict[str, int], scans: int) -> float:
    return sum(requests.values()) / scans


def run(files: int = 500) -> list[dict]:
    from figures import figure

    measured = measure(files)
    samples, baseline, pipeline = measured["samples"], measured["baseline"], measured["pipeline"]
    n_known = sum(s.known for s in samples)
    n_new = len(samples) - n_known
    rate = len(samples) / pipeline["seconds"]
    cpu_ms = 1000 * pipeline["cpu"] / len(samples)
    known = _per_scan(pipeline["requests"][True], n_known)
    new = _per_scan(pipeline["requests"][False], n_new)
    base_known, base_new = _per_scan(baseline["requests"][True], n_known), _per_scan(baseline["requests"][False], n_new)
    before = f"{base_known:.2f} | {base_new:.2f}"
    where = "" if pipeline["paused"] else " (requests included: no Redis to pause the workers)"
    all_done = pipeline["completed"] == len(samples)
    return [
        figure(
            f"pipeline: {len(samples)} scans, half known, 2 worker processes{where}",
            "scans/s",
            rate,
            baseline=len(samples) / baseline["seconds"],
            target=">= 50",
            met=rate >= 50 and all_done,
        ),
        figure("pipeline: worker CPU per scan", "ms", cpu_ms, target="<= 20", met=cpu_ms <= 20),
        figure(
            "pipeline: VirusTotal requests per known | new file",
            "requests",
            f"{known:.2f} | {new:.2f}",
            baseline=before,
            target="1 | 3",
            met=(round(known, 2), round(new, 2)) == (1.0, 3.0),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = run(args.files)
    after = os.getloadavg()[0]
    print(f"\n{args.files} files, zero-latency emulator, cpus {os.cpu_count()}, load {load:.2f} -> {after:.2f}")
    for row in rows:
        print(f"{row['figure']:<72} {row['value']!s:>12} {row['unit']:<9} baseline {row['baseline']!s:>12}  "
              f"target {row['target']:<6} met {row['met']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scan throughput of the whole pipeline against a zero-latency VirusTotal emulator, beside the
same files scanned one after another by calling the VirusTotal client directly.

Half the files are already known to the emulator (one lookup should settle them), half are new
(lookup, upload, poll). The pipeline run uses the app in this process for the API and
`celery -A worker worker --concurrency N` subprocesses for the work, all on a temporary SQLite
database and broker, or on PostgreSQL and Redis when BENCH_DATABASE_URL and BENCH_REDIS_URL are
set (that database's tables are dropped and created, that Redis database is flushed: point them
at scratch ones).

    .venv/bin/python bench/pipeline.py [--files 500] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import hashlib
import io
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


class EmulatorProcess:
    """`python -m vt_emulator` in a process of its own, so serving the workers
    never competes with this process for the GIL; driven through its control surface."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vt_emulator", "--port", "0", "--quiet",
             "--queued-seconds", "0", "--progress-seconds", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.url = self.proc.stdout.readline().strip()  # the base URL, ending in /api/v3
        if not self.url.startswith("http"):
            raise RuntimeError("the emulator did not start")
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

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def teach(emulator: EmulatorProcess, samples: list[Sample]) -> None:
    for s in samples:
        if s.known:
            emulator.add_file(s.content)


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


# -- baseline: one process, one file at a time -------------------------------------------------


def run_baseline(emulator: EmulatorProcess, samples: list[Sample]) -> dict:
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


def run_pipeline(emulator: EmulatorProcess, samples: list[Sample], workdir: Path, concurrency: int) -> dict:
    from sqlalchemy import func, select

    from scanner.extensions import db
    from scanner.scans.models import Scan

    app, client, headers = fresh_app(workdir, emulator.url)

    # Files first, while the user has no key, so no scan starts before the clock does.
    file_ids = {}
    for s in samples:
        data = {"file": (io.BytesIO(s.content), s.name)}
        file_ids[s.name] = _ok(client.post("/api/files/upload", data=data, headers=headers), 201)["id"]
    keys = {}
    for known in (True, False):
        value = secrets.token_hex(32)
        emulator.add_key(value, **BUDGET)
        body = {"name": "known" if known else "new", "key_value": value, **BUDGET}
        keys[known] = (_ok(client.post("/api/keys/", json=body, headers=headers), 201)["api_key"]["id"], value)
    teach(emulator, samples)

    workers = Workers(os.environ.copy(), concurrency, workdir / "worker.log")
    try:
        workers.wait_ready(app)
        before = {known: emulator.counts(value) for known, (_, value) in keys.items()}
        cpu_before = {"workers": workers.cpu_seconds(), "api": cpu_seconds(os.getpid()), "emulator": emulator.cpu()}
        start = time.perf_counter()
        for s in samples:
            body = {"api_key_id": keys[s.known][0]}
            _ok(client.post(f"/api/scan/file/{file_ids[s.name]}", json=body, headers=headers), 202)
        enqueued = time.perf_counter() - start
        with app.app_context():
            while True:
                done = db.session.scalar(select(func.count()).select_from(Scan).where(Scan.status.in_(TERMINAL)))
                db.session.rollback()
                if done >= len(samples):
                    break
                if workers.proc.poll() is not None:
                    raise RuntimeError(f"the worker exited:\n{workers.log_path.read_text()[-3000:]}")
                time.sleep(0.02)
            seconds = time.perf_counter() - start
            cpu = {
                "workers": workers.cpu_seconds() - cpu_before["workers"],
                "api": cpu_seconds(os.getpid()) - cpu_before["api"],
                "emulator": emulator.cpu() - cpu_before["emulator"],
            }
            statuses = dict(Counter(db.session.scalars(select(Scan.status))))
            db.session.remove()
    finally:
        workers.stop()
    return {
        "seconds": seconds,
        "enqueue_seconds": enqueued,
        "statuses": statuses,
        "cpu": cpu,
        "requests": {known: spent(before[known], emulator.counts(value)) for known, (_, value) in keys.items()},
        "database": app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0],
        "broker": app.config["CELERY"]["broker_url"].split(":")[0],
    }


def _per_scan(requests: dict[str, int], scans: int) -> str:
    total = sum(requests.values())
    detail = ", ".join(f"{k} {n / scans:.2f}" for k, n in sorted(requests.items()))
    return f"{total / scans:.2f}  ({detail})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    emulator = EmulatorProcess()
    try:
        samples = make_samples(workdir, args.files)
        n_known = sum(s.known for s in samples)
        n_new = len(samples) - n_known
        baseline = run_baseline(emulator, samples)
        emulator.reset()
        pipeline = run_pipeline(emulator, samples, workdir, args.concurrency)
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    base_rate = len(samples) / baseline["seconds"]
    pipe_rate = len(samples) / pipeline["seconds"]
    print(
        f"\n{len(samples)} files ({n_known} known to VirusTotal, {n_new} new), zero-latency emulator, "
        f"python {sys.version.split()[0]}, cpus {os.cpu_count()}"
    )
    print(
        f"pipeline: {pipeline['database']} database, {pipeline['broker']} broker, {args.concurrency} worker "
        f"processes, SCAN_POLL_INTERVALS=0.2; statuses {pipeline['statuses']}\n"
    )
    print(f"{'run':<44} {'seconds':>8} {'scans/s':>8}   VT requests per scan: known | new")
    print("-" * 130)
    for label, run, rate in (
        ("baseline: client called directly, sequential", baseline, base_rate),
        (f"pipeline: API + {args.concurrency} Celery worker processes", pipeline, pipe_rate),
    ):
        known, new = run["requests"][True], run["requests"][False]
        print(f"{label:<44} {run['seconds']:8.2f} {rate:8.1f}   {_per_scan(known, n_known)} | {_per_scan(new, n_new)}")
    print("-" * 130)
    print(f"{'ratio pipeline / baseline (scans/s)':<44} {'':>8} {pipe_rate / base_rate:8.2f}")
    cpu = pipeline["cpu"]
    print(
        f"pipeline CPU seconds: workers {cpu['workers']:.1f} ({1000 * cpu['workers'] / len(samples):.0f} ms a scan), "
        f"API in this process {cpu['api']:.1f}, emulator {cpu['emulator']:.1f}"
    )
    enqueue = pipeline["enqueue_seconds"]
    print(f"(of the pipeline's {pipeline['seconds']:.2f} s, {enqueue:.2f} s went to the POST /api/scan/file requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chaos: the whole service on this machine under load, one fault at a time, and whether every
scan and bulk job still reaches the right end.

Starts a Redis of its own (broker, quota store, cache), the VirusTotal emulator, gunicorn, two
Celery workers and beat, against the PostgreSQL database named by CHAOS_DATABASE_URL (created
when missing, emptied when not: give it one of its own). For each fault: a fresh user with
two keys puts scans in flight (files VirusTotal knows, new files, rescans) plus a bulk job, the
fault strikes, and the run waits for every scan and the job to settle. Pass, per fault:

- every scan completed with the verdict VirusTotal holds for its file, the bulk job finished;
- the same main worker processes before and after a Redis fault;
- one set of engine rows per scan; no file submitted to VirusTotal twice (its times_submitted);
- no answer 500 from the routes a user polls meanwhile.

Prints a table of the figures; exits 1 when a fault did not pass.

    CHAOS_DATABASE_URL=postgresql://... python scripts/chaos.py [--faults redis-kill,vt-503] [--scans 60]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EMULATOR = "vt_emulator"
TERMINAL = ("completed", "failed", "not_found")
SETTLE_SECONDS = 300  # after the fault ends, the longest a round waits for its work to settle
PROBE_ROUTES = ("/api/keys/", "/api/files/", "/api/bulk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"gave up waiting for {what}")


class Stack:
    """Every process of the service, started from this checkout, logging under `workdir`."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir = workdir
        self.redis_port, vt_port, self.web_port = free_port(), free_port(), free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        self.vt = f"http://127.0.0.1:{vt_port}"
        self.web = f"http://127.0.0.1:{self.web_port}"
        self.database_url = database_url
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "INSTANCE_DIR": str(workdir / "instance"),
            "DATABASE_URL": database_url,
            "REDIS_URL": f"{self.redis_url}/0",
            "CELERY_BROKER_URL": f"{self.redis_url}/1",
            "SECRET_KEY": secrets.token_hex(32),
            "JWT_SECRET_KEY": secrets.token_hex(32),
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "VT_API_URL": f"{self.vt}/api/v3",
            "VT_READ_TIMEOUT": "10",
            "RATELIMIT_ENABLED": "0",
            "LOG_LEVEL": "WARNING",
            "BROKER_POLL_SECONDS": "0.2",
            "WORKER_HEARTBEAT_SECONDS": "1",
            "SCAN_POLL_INTERVALS": "0.5,1,2",
            "SCAN_RETRY_BASE_SECONDS": "0.5",
            "SCAN_RETRY_MAX_SECONDS": "5",
            "SCAN_LEASE_SECONDS": "20",
            "SCAN_STUCK_GRACE_SECONDS": "5",
            "SCAN_SWEEP_SECONDS": "2",
            "SCAN_MAX_ATTEMPTS": "20",
            "BULK_SLICE_SECONDS": "5",
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PASSWORD_HASH_PARALLELISM": "1",
        }
        for name in ("SCANNER_CONFIG", "TEST_DATABASE_URL", "TEST_REDIS_URL", "CACHE_REDIS_URL"):
            self.env.pop(name, None)
        self.redis: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._others: list[subprocess.Popen] = []
        self._log = open(workdir / "stack.log", "w")  # noqa: SIM115  closed in stop()

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "a")  # noqa: SIM115  the process owns it
        return subprocess.Popen(  # noqa: S603
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> None:
        self.start_redis()
        self._others.append(
            self._spawn([sys.executable, "-m", EMULATOR, "--port", self.vt.rsplit(":", 1)[1], "--quiet"], "emulator")
        )
        wait_for(lambda: requests.get(f"{self.vt}/_emulator/config", timeout=2).ok, "the emulator")
        self.emulator("config", queued_seconds=1.0, progress_seconds=1.0)
        self._reset_database()
        web = [
            str(BIN / "gunicorn"),
            "wsgi:app",
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{self.web_port}",
        ]
        self._others.append(self._spawn([*web, "--workers", "2", "--threads", "8"], "web"))
        self._others.append(self._spawn([str(BIN / "celery"), "-A", "worker", "beat", "--loglevel", "INFO"], "beat"))
        self.workers = [self.start_worker(i) for i in range(2)]
        wait_for(lambda: requests.get(f"{self.web}/api/health", timeout=2).ok, "the web server")

    def start_redis(self) -> None:
        args = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        self.redis = self._spawn(args, "redis")
        client = redis.Redis(port=self.redis_port, socket_connect_timeout=0.5)
        wait_for(client.ping, "redis-server")
        client.close()

    def start_worker(self, index: int) -> subprocess.Popen:
        args = [str(BIN / "celery"), "-A", "worker", "worker", "--loglevel", "INFO", "--concurrency", "2"]
        return self._spawn([*args, "-n", f"chaos{index}@%h"], f"worker{index}")

    def _reset_database(self) -> None:
        url = make_url(self.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
        server.dispose()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        subprocess.run(  # noqa: S603
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def emulator(self, action: str, **payload: object) -> dict:
        r = requests.post(f"{self.vt}/_emulator/{action}", json=payload, timeout=10)
        r.raise_for_status()
        return r.json()

    def worker_pids(self) -> list[int | None]:
        return [w.pid if w.poll() is None else None for w in self.workers]

    def pool_children(self) -> list[psutil.Process]:
        children: list[psutil.Process] = []
        for worker in self.workers:
            with contextlib.suppress(psutil.Error):
                children += psutil.Process(worker.pid).children()
        return children

    def stop(self) -> None:
        if self.redis is not None and self.redis.poll() is None:
            os.kill(self.redis.pid, signal.SIGCONT)
        for proc in [*self.workers, *self._others, self.redis]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, *self._others, self.redis]:
            if proc is None:
                continue
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._log.close()


@dataclass
class Round:
    fault: str
    scans: dict[str, str] = field(default_factory=dict)  # scan id -> expected "malicious" / "clean"
    job_id: str = ""
    user_id: str = ""
    keys: list[str] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)
    settle_seconds: float = 0.0
    pids_before: list[int | None] = field(default_factory=list)
    pids_after: list[int | None] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)


class Driver:
    """A user's side of a round: sign up, add keys, upload, rescan, submit a bulk job, poll."""

    def __init__(self, stack: Stack, fault: str) -> None:
        self.stack = stack
        self.http = requests.Session()
        name = f"chaos_{fault.replace('-', '_')}_{secrets.token_hex(3)}"
        password = "Chaos-Monkey-" + secrets.token_hex(4)
        body = {"username": name, "email": f"{name}@example.com", "password": password}
        r = self.http.post(f"{stack.web}/api/auth/register", json=body, timeout=30)
        assert r.status_code == 201, r.text
        r = self.http.post(f"{stack.web}/api/auth/login", json={"username": name, "password": password}, timeout=30)
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        self.user_id = self.http.get(f"{stack.web}/api/auth/profile", timeout=30).json()["user"]["id"]

    def add_key(self, name: str) -> str:
        value = secrets.token_hex(32)
        self.stack.emulator("keys", key=value, per_minute=100000, per_day=1000000)
        body = {"name": name, "key_value": value, "per_minute": 100000, "per_day": 1000000}
        r = self.http.post(f"{self.stack.web}/api/keys/", json=body, timeout=30)
        assert r.status_code == 201, r.text
        return value

    def upload(self, content: bytes, name: str) -> dict:
        files = {"file": (name, io.BytesIO(content), "application/octet-stream")}
        r = self.http.post(f"{self.stack.web}/api/files/upload", files=files, timeout=60)
        assert r.status_code == 201, r.text
        return r.json()

    def rescan(self, file_id: str) -> str:
        r = self.http.post(f"{self.stack.web}/api/scan/file/{file_id}/rescan", json={}, timeout=60)
        assert r.status_code == 202, r.text
        return r.json()["scan_id"]

    def bulk(self, lines: list[str]) -> str:
        files = {"file": ("iocs.txt", io.BytesIO("\n".join(lines).encode()), "text/plain")}
        r = self.http.post(f"{self.stack.web}/api/bulk", files=files, timeout=60)
        assert r.status_code == 202, r.text
        return r.json()["job_id"]

    def probe(self, paths: list[str], answers: Counter, stop: threading.Event) -> None:
        """Poll what a user's screen would, counting the answers by status."""
        while not stop.is_set():
            for path in paths:
                try:
                    answers[self.http.get(f"{self.stack.web}{path}", timeout=30).status_code] += 1
                except requests.RequestException:
                    answers["no answer"] += 1
            stop.wait(0.5)


def load(stack: Stack, fault: str, scans: int, bulk: int) -> tuple[Round, Driver]:
    """Put `scans` scans in flight (40% files VirusTotal knows, 40% new, 20% rescans) and a bulk job."""
    driver = Driver(stack, fault)
    work = Round(fault, user_id=driver.user_id)
    work.keys = [driver.add_key("first"), driver.add_key("second")]
    known, rescans = int(scans * 0.4), int(scans * 0.2)
    new = scans - known - rescans
    known_files = []
    for i in range(known):
        content = f"chaos {fault} known {i} {secrets.token_hex(8)}".encode()
        verdict = "malicious" if i % 2 else "clean"
        r = requests.post(f"{stack.vt}/_emulator/files", params={"verdict": verdict}, data=content, timeout=10)
        r.raise_for_status()
        known_files.append((content, verdict))
    new_files = [os.urandom(2048) for _ in range(new)]

    def upload_known(item: tuple[bytes, str]) -> tuple[str, str, str]:
        body = driver.upload(item[0], "known.bin")
        return body["scan"]["scan_id"], body["id"], item[1]

    with ThreadPoolExecutor(8) as pool:
        uploaded = list(pool.map(upload_known, known_files))
        for scan_id, _, verdict in uploaded:
            work.scans[scan_id] = verdict
        for scan_id in pool.map(lambda c: driver.upload(c, "new.bin")["scan"]["scan_id"], new_files):
            work.scans[scan_id] = "clean"  # random bytes: nothing for an engine to find
        targets = [(file_id, verdict) for _, file_id, verdict in uploaded[:rescans]]
        for scan_id, (_, verdict) in zip(pool.map(lambda t: driver.rescan(t[0]), targets), targets, strict=True):
            work.scans[scan_id] = verdict
    tag = secrets.token_hex(3)
    work.job_id = driver.bulk([f"h{i}-{tag}.chaos-{fault}.net" for i in range(bulk)])
    return work, driver


# -- faults: each runs while the work is in flight and returns when the fault is over ---------------


def kill_workers(stack: Stack, work: Round) -> None:
    """SIGKILL a pool child five times, then a whole worker (started again)."""
    for _ in range(5):
        children = stack.pool_children()
        if children:
            with contextlib.suppress(psutil.Error):
                random.choice(children).kill()
        time.sleep(2)
    victim = stack.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    stack.workers[0] = stack.start_worker(0)


def kill_redis(stack: Stack, work: Round, seconds: float = 30) -> None:
    assert stack.redis is not None
    stack.redis.kill()
    stack.redis.wait(10)
    time.sleep(seconds)
    stack.start_redis()


def freeze_redis(stack: Stack, work: Round, seconds: float = 60) -> None:
    assert stack.redis is not None
    os.kill(stack.redis.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(stack.redis.pid, signal.SIGCONT)


def terminate_database_connections(stack: Stack, work: Round) -> None:
    engine = create_engine(stack.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        for _ in range(3):
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            conn.commit()
            time.sleep(3)
    engine.dispose()


def emulator_faults(**faults: object) -> Callable[[Stack, Round], None]:
    def inject(stack: Stack, work: Round) -> None:
        stack.emulator("faults", **faults)

    return inject


def key_turns_to_429(stack: Stack, work: Round) -> None:
    """The first key's allowance is gone at VirusTotal: every request with it answers 429."""
    stack.emulator("keys", key=work.keys[0], per_minute=0, per_day=0)


FAULTS: dict[str, Callable[[Stack, Round], None]] = {
    "worker-kill": kill_workers,
    "redis-kill": kill_redis,
    "redis-freeze": freeze_redis,
    "db-terminate": terminate_database_connections,
    "vt-503": emulator_faults(transient_rate=0.10),
    "vt-drop": emulator_faults(drop_rate=0.05),
    "vt-latency": emulator_faults(latency_ms=2000),
    "key-429": key_turns_to_429,
}
REDIS_FAULTS = ("redis-kill", "redis-freeze")
VIRUSTOTAL_FAULTS = ("vt-503", "vt-drop", "vt-latency")


def settle(stack: Stack, work: Round, engine) -> bool:
    deadline = time.monotonic() + SETTLE_SECONDS
    ids = list(work.scans)
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            open_scans = conn.execute(
                text(
                    "SELECT count(*) FROM scans WHERE user_id = :u AND status NOT IN ('completed','failed','not_found')"
                ),
                {"u": work.user_id},
            ).scalar_one()
            job = conn.execute(text("SELECT status FROM bulk_jobs WHERE id = :j"), {"j": work.job_id}).scalar_one()
        if open_scans == 0 and job in ("completed", "failed", "cancelled") and len(ids) > 0:
            return True
        time.sleep(1)
    return False


def verify(stack: Stack, work: Round, engine) -> None:
    check_key = secrets.token_hex(32)
    stack.emulator("keys", key=check_key, per_minute=100000, per_day=1000000)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.id, s.status, s.error, f.sha256, s.malicious FROM scans s JOIN files f ON f.id = s.file_id"
                " WHERE s.user_id = :u"
            ),
            {"u": work.user_id},
        ).all()
        twins = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT scan_id, engine_name FROM engine_results e"
                " JOIN scans s ON s.id = e.scan_id WHERE s.user_id = :u"
                " GROUP BY scan_id, engine_name HAVING count(*) > 1) t"
            ),
            {"u": work.user_id},
        ).scalar_one()
        job = conn.execute(
            text(
                "SELECT status, (SELECT count(*) FROM bulk_items WHERE job_id = :j AND status = 'pending')"
                " FROM bulk_jobs WHERE id = :j"
            ),
            {"j": work.job_id},
        ).one()
    statuses = Counter(row.status for row in rows)
    wrong = 0
    for row in rows:
        expected = work.scans.get(str(row.id))
        if row.status != "completed" or expected is None:
            continue
        if ((row.malicious or 0) > 0) != (expected == "malicious"):
            wrong += 1
    # VirusTotal counts a file's submissions: a second upload of one file shows as 2.
    submitted = Counter()
    for sha256 in {row.sha256 for row in rows}:
        r = requests.get(f"{stack.vt}/api/v3/files/{sha256}", headers={"x-apikey": check_key}, timeout=10)
        submitted[r.json()["data"]["attributes"]["times_submitted"] if r.ok else 0] += 1
    uploaded_twice = sum(n for times, n in submitted.items() if times > 1)
    errors = Counter((row.error or "")[:60] for row in rows if row.status != "completed")
    work.figures = {
        "scans": len(rows),
        "completed": statuses.get("completed", 0),
        "failed": statuses.get("failed", 0),
        "open": sum(n for s, n in statuses.items() if s not in TERMINAL),
        "wrong verdict": wrong,
        "engine twins": twins,
        "files sent twice": uploaded_twice,
        "bulk": f"{job[0]} ({job[1]} open)",
        "500s": sum(n for s, n in work.answers.items() if isinstance(s, int) and s >= 500 and s != 503),
        "503s": work.answers.get(503, 0),
        "same workers": "-"
        if work.fault not in REDIS_FAULTS
        else ("yes" if work.pids_before == work.pids_after else f"NO ({work.pids_after.count(None)} died)"),
        "settled (s)": round(work.settle_seconds),
        "errors": dict(errors.most_common(2)),
    }
    passed = (
        work.figures["completed"] == len(work.scans) == len(rows)
        and wrong == 0
        and twins == 0
        and uploaded_twice == 0
        and job[0] == "completed"
        and work.figures["500s"] == 0
        and not str(work.figures["same workers"]).startswith("NO")
    )
    work.figures["result"] = "PASS" if passed else "FAIL"


def run_round(stack: Stack, fault: str, scans: int, bulk: int, engine) -> Round:
    print(f"-- {fault}: loading {scans} scans and a {bulk}-line bulk job", flush=True)
    if fault in VIRUSTOTAL_FAULTS:  # VirusTotal misbehaves from the first request on
        FAULTS[fault](stack, Round(fault))
    work, driver = load(stack, fault, scans, bulk)
    stop = threading.Event()
    some_scan = next(iter(work.scans))
    paths = [*PROBE_ROUTES, f"/api/scan/{some_scan}/status", f"/api/bulk/{work.job_id}"]
    prober = threading.Thread(target=driver.probe, args=(paths, work.answers, stop), daemon=True)
    prober.start()
    work.pids_before = stack.worker_pids()
    started = time.monotonic()
    try:
        if fault not in VIRUSTOTAL_FAULTS:
            FAULTS[fault](stack, work)
        settled = settle(stack, work, engine)
        work.settle_seconds = time.monotonic() - started
    finally:
        stack.emulator("faults")  # all off
        stop.set()
        prober.join()
    work.pids_after = stack.worker_pids()
    for index, pid in enumerate(work.pids_after):
        if pid is None:  # a worker died (and failed the round): the next fault gets a full crew
            stack.workers[index] = stack.start_worker(index)
    verify(stack, work, engine)
    if not settled:
        work.figures["result"] = "FAIL"
    print(f"   {work.figures}", flush=True)
    return work


COLUMNS = ("scans", "completed", "failed", "open", "wrong verdict", "engine twins", "files sent twice", "bulk")
COLUMNS += ("500s", "503s", "same workers", "settled (s)", "result")


def table(rounds: list[Round]) -> str:
    header = ["fault", *COLUMNS]
    lines = [[r.fault, *(str(r.figures.get(c, "")) for c in COLUMNS)] for r in rounds]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    fmt = " | ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*row) for row in lines]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of: {', '.join(FAULTS)}")
    parser.add_argument("--scans", type=int, default=60, help="scans in flight per fault")
    parser.add_argument("--bulk", type=int, default=60, help="lines of the bulk job per fault")
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder")
    args = parser.parse_args(argv)
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    database_url = os.environ.get("CHAOS_DATABASE_URL", "")
    if not database_url.startswith("postgresql"):
        parser.error("set CHAOS_DATABASE_URL to a PostgreSQL database of its own: the run empties it")
    if shutil.which("redis-server") is None:
        parser.error("needs redis-server on PATH")

    workdir = Path(tempfile.mkdtemp(prefix="scanner-chaos-"))
    print(f"logs: {workdir}", flush=True)
    stack = Stack(workdir, database_url)
    rounds: list[Round] = []
    started = time.monotonic()
    try:
        stack.start()
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_pre_ping=True)
        for fault in faults:
            rounds.append(run_round(stack, fault, args.scans, args.bulk, engine))
        engine.dispose()
    finally:
        stack.stop()
    print(f"\n{table(rounds)}\n\n{len(faults)} faults in {time.monotonic() - started:.0f} s", flush=True)
    if not args.keep and all(r.figures.get("result") == "PASS" for r in rounds):
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(r.figures.get("result") == "PASS" for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())

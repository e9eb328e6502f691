"""Boot the Procfile's processes with production settings on this machine and scan one file
end to end: `release` (migrations) on a fresh PostgreSQL database, then `web`, `worker` and
`beat`, each with an instance folder of its own (no shared disk), sharing PostgreSQL, Redis
and an S3-compatible bucket (moto in server mode), against the VirusTotal emulator.

    .venv/bin/python scripts/procfile_check.py --database-url postgresql://postgres@127.0.0.1:5432/scanner \\
        --redis-url redis://127.0.0.1:6379/7 [--web-port 8301] [--s3-port 8302] [--emulator-port 8303]

The database named in --database-url only lends its server: the check creates `<name>_procfile`
beside it and drops it at the end. Prints each step with its time; exits 1 on the first failure
with the logs of the processes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.s3 import S3Server, free_port  # noqa: E402

# The VirusTotal emulator, run as `python -m EMULATOR_MODULE`.
EMULATOR_MODULE = "vt_emulator"
KEY_BUDGET = {"per_minute": 1000, "per_day": 100000}  # the public API's 4 a minute would make the check wait
PASSWORD = "Correct-Horse-42"  # noqa: S105  the account the check creates in its own database


def procfile() -> dict[str, str]:
    entries = (line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line)
    return {name.strip(): command.strip() for name, command in entries}


class Processes:
    """Everything started here, each in a process group of its own, logging to `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: str | list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115  inherited by the child, closed below
        args = ["/bin/sh", "-c", command] if isinstance(command, str) else command
        proc = subprocess.Popen(  # noqa: S603
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.running[name] = proc
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.workdir.glob("*.log")))

    def stop_all(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.running.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def wait_until(what: str, check: Callable[[], Any], limit: float, procs: Processes) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for name, proc in procs.running.items():
            if proc.poll() is not None and name != "release":
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}")
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not within {limit:g} s")


def database_beside(url: str, name: str) -> str:
    return urlparse(url)._replace(path=f"/{name}").geturl()


def recreate(admin_url: str, name: str, drop_only: bool = False) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def scan_one_file(base: str, bucket: str, s3: Any, vt_key: str) -> dict[str, Any]:
    account = {"username": "operator", "email": "operator@example.com", "password": PASSWORD}
    session = requests.Session()
    assert session.post(f"{base}/api/auth/register", json=account, timeout=30).status_code == 201
    login = session.post(f"{base}/api/auth/login", json={"username": "operator", "password": PASSWORD}, timeout=30)
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    added = session.post(f"{base}/api/keys/", json={"name": "emulator", "key_value": vt_key, **KEY_BUDGET}, timeout=30)
    assert added.status_code == 201, added.text
    content = os.urandom(2 * 1024 * 1024)  # unknown to VirusTotal: the worker uploads it
    sha256 = hashlib.sha256(content).hexdigest()
    uploaded = session.post(f"{base}/api/files/upload", files={"file": ("sample.bin", content)}, timeout=60)
    assert uploaded.status_code == 201, uploaded.text
    scan_id = uploaded.json()["scan"]["scan_id"]
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert stored == [f"blobs/{sha256}"], stored
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = session.get(f"{base}/api/scan/{scan_id}/status", timeout=30).json()
        if status["status"] in ("completed", "failed", "not_found"):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"the scan did not settle: {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), required="DATABASE_URL" not in os.environ
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), required="REDIS_URL" not in os.environ)
    parser.add_argument("--web-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--s3-port", type=int, default=0)
    parser.add_argument("--emulator-port", type=int, default=0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="procfile-check-"))
    procs = Processes(workdir)
    database = f"{urlparse(args.database_url).path.strip('/')}_procfile"
    admin_url = args.database_url
    s3_server: S3Server | None = None
    steps: list[tuple[str, float]] = []
    started = time.monotonic()

    def step(name: str) -> None:
        steps.append((name, time.monotonic() - started))
        print(f"{time.monotonic() - started:7.1f} s  {name}", flush=True)

    try:
        recreate(admin_url, database)
        s3_server = S3Server(workdir / "s3.log", args.s3_port or None)
        bucket = s3_server.new_bucket()
        vt_key = secrets.token_hex(32)
        emulator_port = args.emulator_port or free_port()
        emulator_args = [sys.executable, "-m", EMULATOR_MODULE, "--port", str(emulator_port), "--quiet"]
        procs.start(
            "emulator",
            [*emulator_args, "--key", f"{vt_key}:{KEY_BUDGET['per_minute']}:{KEY_BUDGET['per_day']}"],
            dict(os.environ),
        )
        step(f"PostgreSQL database {database}, S3 bucket {bucket} on {s3_server.url}, emulator")

        web_port = args.web_port or free_port()
        shared = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SCANNER_", "BLOB_", "TEST_"))},
            # The Procfile names gunicorn, celery and flask bare, as a platform's PATH has them.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "SCANNER_CONFIG": "production",
            "DATABASE_URL": database_beside(args.database_url, database),
            "REDIS_URL": args.redis_url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "BLOB_STORE_URL": f"s3://{bucket}/blobs",
            **s3_server.env,
            "VT_API_URL": f"http://127.0.0.1:{emulator_port}/api/v3",
            "PORT": str(web_port),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
            "WORKER_CONCURRENCY": "1",
            "SCAN_POLL_INTERVALS": "1,2",
            "LOG_LEVEL": "WARNING",
        }
        for name in ("CELERY_BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URI", "INSTANCE_DIR"):
            shared.pop(name, None)
        commands = procfile()

        def machine(name: str) -> dict[str, str]:
            return {**shared, "INSTANCE_DIR": str(workdir / name / "instance")}

        release = procs.start("release", commands["release"], machine("release"))
        if release.wait(180) != 0:
            raise RuntimeError(f"release exited with {release.returncode}")
        step("release: migrations applied")
        for name in ("web", "worker", "beat"):
            procs.start(name, commands[name], machine(name))
        base = f"http://127.0.0.1:{web_port}"
        wait_until("readiness", lambda: requests.get(f"{base}/api/health/ready", timeout=5).ok, 120, procs)
        step("web, worker, beat: ready")

        status = scan_one_file(base, bucket, s3_server.client(), vt_key)
        if status["status"] != "completed":
            raise RuntimeError(f"the scan ended {status['status']}: {status.get('error')}")
        step(f"scan completed through the bucket: {status['detection_ratio']}")
        local = [p for p in workdir.rglob("*") if p.is_file() and len(p.name) == 64]
        if local:
            raise RuntimeError(f"a blob landed on a local disk: {local}")
        return 0
    except Exception as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}\n{procs.logs()}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if s3_server is not None:
            s3_server.stop()
        recreate(admin_url, database, drop_only=True)


if __name__ == "__main__":
    sys.exit(main())

"""A walk through the API as a new user would take it, with no VirusTotal key needed.

Starts the VirusTotal emulator and the service (web, worker, beat) on embedded defaults in a
temporary folder, talks to them over HTTP, prints every step, and stops what it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(title: str, response: requests.Response | None = None, show: object = None) -> None:
    print(f"\n== {title}")
    if response is not None:
        print(f"   {response.request.method} {response.request.path_url} -> {response.status_code}")
    if show is not None:
        text = json.dumps(show, indent=2) if not isinstance(show, str) else show
        print("   " + text.replace("\n", "\n   ")[:2500])


def wait_until(check, what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gave up waiting for {what}")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="scanner-demo-"))
    vt_port, web_port = free_port(), free_port()
    vt_url = f"http://127.0.0.1:{vt_port}"
    env = {
        **os.environ,
        # The Procfile names gunicorn and celery bare, as a platform's PATH has them.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "INSTANCE_DIR": str(workdir),
        "VT_API_URL": f"{vt_url}/api/v3",
        "PORT": str(web_port),
        "SCAN_POLL_INTERVALS": "1,2,4",
        "BROKER_POLL_SECONDS": "0.2",
        "WORKER_HEARTBEAT_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    logs = open(workdir / "demo.log", "w")  # noqa: SIM115  closed at the end
    procs: list[subprocess.Popen] = []

    def start(args: list[str]) -> None:
        procs.append(
            subprocess.Popen(args, cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True)
        )

    try:
        step(f"Starting the VirusTotal emulator on {vt_url} and the service on port {web_port}")
        print(f"   logs: {workdir}/demo.log")
        start(
            [
                str(BIN / "python"),
                "-m",
                "scanner.virustotal.emulator",
                "--port",
                str(vt_port),
                "--queued-seconds",
                "2",
                "--progress-seconds",
                "3",
            ]
        )
        subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        start([str(BIN / "honcho"), "start", "-f", "Procfile", "web", "worker", "beat"])
        api = f"http://127.0.0.1:{web_port}/api"
        wait_until(lambda: requests.get(f"{vt_url}/_emulator/counts", timeout=2).ok, "the emulator")
        wait_until(lambda: requests.get(f"{api}/health/ready", timeout=5).status_code == 200, "the service", 90)
        r = requests.get(f"{api}/health/ready", timeout=5)
        step(
            "The service is ready: database, cache, broker and a worker all answer",
            r,
            {k: v["status"] for k, v in r.json()["components"].items()},
        )

        creds = {"username": "analyst", "email": "analyst@example.com", "password": "Correct-Horse-42"}
        r = requests.post(f"{api}/auth/register", json=creds, timeout=10)
        step("Register an account", r, r.json())
        r = requests.post(f"{api}/auth/login", json={"username": "analyst", "password": creds["password"]}, timeout=10)
        step("Log in: an access token (15 min) and a refresh token", r, {"user": r.json()["user"]})
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

        vt_key = secrets.token_hex(32)
        requests.post(f"{vt_url}/_emulator/keys", json={"key": vt_key, "per_minute": 4, "per_day": 500}, timeout=5)
        r = requests.post(
            f"{api}/keys/", json={"name": "My VirusTotal key", "key_value": vt_key}, headers=auth, timeout=10
        )
        step("Add a VirusTotal API key (stored encrypted, validated, never shown again)", r, r.json())

        r = requests.post(f"{api}/files/upload", files={"file": ("eicar.com", EICAR)}, headers=auth, timeout=30)
        step("Upload the EICAR test file: hashed on the way in, scan started automatically", r, r.json())
        scan_id = r.json()["scan"]["scan_id"]

        print("\n== Waiting for VirusTotal's verdict (hash lookup first, upload only because it is unknown)")
        status: dict = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = requests.get(f"{api}/scan/{scan_id}/status", headers=auth, timeout=10).json()
            print(f"   status={status['status']:<10} stage={status['stage']}")
            if status["status"] in ("completed", "failed", "not_found"):
                break
            time.sleep(1.5)
        r = requests.get(f"{api}/scan/{scan_id}/results", headers=auth, timeout=10)
        if r.ok:
            body = r.json()
            step("The verdict", r, {k: body.get(k) for k in ("status", "detection_ratio", "verdict", "summary")})
            for fmt in ("json", "csv", "pdf"):
                r = requests.get(f"{api}/scan/{scan_id}/export", params={"format": fmt}, headers=auth, timeout=30)
                target = workdir / f"report.{fmt}"
                target.write_bytes(r.content)
                step(
                    f"Export the report as {fmt.upper()}",
                    r,
                    f"{r.headers.get('Content-Type')}, {len(r.content)} bytes -> {target}",
                )

        r = requests.post(f"{api}/check_ioc", json={"ioc": "8.8.8.8"}, headers=auth, timeout=30)
        if r.status_code != 404:
            step("Look up an indicator", r, {k: r.json().get(k) for k in ("ioc", "ioc_type", "summary", "source")})
            r = requests.post(f"{api}/check_ioc", json={"ioc": "8.8.8.8"}, headers=auth, timeout=30)
            step(
                "The same indicator again: answered from the cache, no VirusTotal request",
                r,
                {k: r.json().get(k) for k in ("cached", "source")},
            )

        counts = requests.get(f"{vt_url}/_emulator/counts", params={"key": vt_key}, timeout=5).json()
        step("What VirusTotal was asked, in all", None, counts)
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        logs.close()
        print(f"\nStopped everything the demo started. Reports and logs are in {workdir}")


if __name__ == "__main__":
    sys.exit(main())

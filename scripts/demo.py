"""A walk through the API as a new user would take it, with no VirusTotal key needed.

Starts the VirusTotal emulator and the service (web, worker, beat) on embedded defaults in a
temporary folder, talks to them over HTTP, prints every step, and stops what it started.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from stack import Stack, free_port

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
FINISHED = ("completed", "failed", "not_found")


def step(title: str, response: requests.Response | None = None, show: object = None) -> None:
    print(f"\n== {title}")
    if response is not None:
        print(f"   {response.request.method} {response.request.path_url} -> {response.status_code}")
    if show is not None:
        text = json.dumps(show, indent=2) if not isinstance(show, str) else show
        print("   " + text.replace("\n", "\n   ")[:2500])


def seconds_until(moment: str | None) -> int:
    if not moment:
        return 0
    return max(0, round((datetime.fromisoformat(moment) - datetime.now(UTC)).total_seconds()))


def describe(status: dict, per_minute: int) -> str:
    """One line on where the scan is, and for a wait, why and for how long."""
    stage, left = status["stage"], seconds_until(status.get("next_check_at"))
    if stage == "waiting_for_quota":
        return (
            f"waiting for VirusTotal quota: the key allows {per_minute} requests a minute and they are spent; "
            f"next request in {left} s"
        )
    if stage == "waiting_for_analysis":
        return "VirusTotal is analysing the file"
    if status.get("error"):
        return f"{stage}: {status['error']}"
    known = {
        "queued": "queued for a worker",
        "looking_up": "asking VirusTotal whether it knows the file",
        "uploading": "uploading the file",
    }
    return known.get(stage, f"status={status['status']} stage={stage}")


def follow(api: str, auth: dict[str, str], scan_id: str, per_minute: int, limit: float = 180) -> dict:
    """Print the scan's progress when it changes (and every 10 s of a long wait) until it ends."""
    status: dict = {}
    shown, shown_at = "", 0.0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = requests.get(f"{api}/scan/{scan_id}/status", headers=auth, timeout=10).json()
        if status["status"] in FINISHED:
            break
        line = describe(status, per_minute)
        same_wait = line.split(";")[0] == shown.split(";")[0]
        if not same_wait or time.monotonic() - shown_at >= 10:
            print(f"   {line}")
            shown, shown_at = line, time.monotonic()
        time.sleep(1)
    print(f"   status={status['status']} detection_ratio={status.get('detection_ratio')}")
    return status


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="scanner-demo-"))
    vt_port, web_port = free_port(), free_port()
    per_minute = 4
    env = {
        "SCAN_POLL_INTERVALS": "1,2,4",
        "BROKER_POLL_SECONDS": "0.2",
        "WORKER_HEARTBEAT_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    emulator_args = ["--queued-seconds", "2", "--progress-seconds", "3"]
    step(f"Starting the VirusTotal emulator on port {vt_port} and the service on port {web_port}")
    print(f"   logs: {workdir}/demo.log")
    with (
        open(workdir / "demo.log", "w") as logs,
        Stack(workdir, logs, web_port=web_port, vt_port=vt_port, emulator_args=emulator_args, env=env) as stack,
    ):
        api, vt_url = stack.api, stack.vt_url
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
        emulated = {"key": vt_key, "per_minute": per_minute, "per_day": 500}
        requests.post(f"{vt_url}/_emulator/keys", json=emulated, timeout=5)
        r = requests.post(
            f"{api}/keys/", json={"name": "My VirusTotal key", "key_value": vt_key}, headers=auth, timeout=10
        )
        step("Add a VirusTotal API key (stored encrypted, validated, never shown again)", r, r.json())

        r = requests.post(f"{api}/files/upload", files={"file": ("eicar.com", EICAR)}, headers=auth, timeout=30)
        step("Upload the EICAR test file: hashed on the way in, scan started automatically", r, r.json())
        scan_id = r.json()["scan"]["scan_id"]

        print("\n== Waiting for VirusTotal's verdict (hash lookup first, upload only because it is unknown)")
        print(f"   a public VirusTotal key allows {per_minute} requests a minute: the service paces itself to that")
        follow(api, auth, scan_id, per_minute)
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
    print(f"\nStopped everything the demo started. Reports and logs are in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long a new user waits after `make run`: the migrations, then the Procfile's web, worker and
beat on embedded defaults in a fresh folder, then the first requests a user makes.

    .venv/bin/python bench/first_request.py [CHECKOUT ...]

Each CHECKOUT (default: this one) is started with its own .venv; the first one is the baseline
the others are compared with.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_requests(checkout: Path) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="scanner-bench-"))
    port = free_port()
    bin_dir = checkout / ".venv" / "bin"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "INSTANCE_DIR": str(workdir),
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "VT_API_URL": "http://127.0.0.1:9/api/v3",
    }
    log = open(workdir / "bench.log", "w")  # noqa: SIM115  closed below
    began = time.monotonic()
    migrate = [str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"]
    subprocess.run(migrate, cwd=checkout, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    migrated = time.monotonic() - began
    api = f"http://127.0.0.1:{port}/api"
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(bin_dir / "honcho"), "start", "-f", "Procfile", "web", "worker", "beat"],
        cwd=checkout,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    figures: dict[str, float] = {"migrations, as make run applies them (s)": migrated}
    try:
        while True:
            try:
                if requests.get(f"{api}/openapi.json", timeout=30).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
            if time.monotonic() - started > 120:
                raise SystemExit("the service did not answer within 120 s")
        figures["first answer (s after start)"] = time.monotonic() - started
        creds = {"username": "bench", "email": "bench@example.com", "password": "Correct-Horse-42-bench"}
        t = time.monotonic()
        requests.post(f"{api}/auth/register", json=creds, timeout=60).raise_for_status()
        figures["first register (s)"] = time.monotonic() - t
        t = time.monotonic()
        login = requests.post(
            f"{api}/auth/login", json={"username": "bench", "password": creds["password"]}, timeout=60
        )
        login.raise_for_status()
        figures["first login (s)"] = time.monotonic() - t
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        t = time.monotonic()
        requests.get(f"{api}/keys/", headers=auth, timeout=60).raise_for_status()
        figures["first key listing (s)"] = time.monotonic() - t
        t = time.monotonic()
        while requests.get(f"{api}/health/ready", timeout=30).status_code != 200:
            if time.monotonic() - t > 120:
                break
            time.sleep(0.1)
        figures["ready: worker answers (s after start)"] = time.monotonic() - started
        figures["first user served (s after make run)"] = (
            migrated
            + figures["first answer (s after start)"]
            + figures["first register (s)"]
            + figures["first login (s)"]
            + figures["first key listing (s)"]
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    return figures


def main() -> int:
    checkouts = [Path(p).resolve() for p in sys.argv[1:]] or [ROOT]
    results = [(c, first_requests(c)) for c in checkouts]
    base = results[0][1]
    print(f"{'figure':<40}" + "".join(f"{c.name:>12}" for c, _ in results) + ("   ratio" if len(results) > 1 else ""))
    for name in base:
        row = f"{name:<40}" + "".join(f"{r[name]:>12.2f}" for _, r in results)
        if len(results) > 1:
            row += f"   {results[-1][1][name] / base[name]:.2f}x"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())

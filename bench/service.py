"""A checkout's service as `make run` starts it (migrations, then the Procfile's web, worker and
beat) on embedded defaults in a fresh folder, for the benchmarks that time what a user waits for."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests


@dataclass
class Service:
    api: str
    started: float  # time.monotonic() when the Procfile's processes were started
    migrated: float  # seconds the migrations took


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(checkout: Path, **settings: str) -> Iterator[Service]:
    """The service, answering its first request; stopped on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix="scanner-bench-"))
    port = free_port()
    bin_dir = checkout / ".venv" / "bin"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "INSTANCE_DIR": str(workdir),
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    with open(workdir / "bench.log", "w") as log:
        began = time.monotonic()
        migrate = [str(bin_dir / "flask"), "--app", "wsgi", "db", "upgrade"]
        subprocess.run(migrate, cwd=checkout, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
        service = Service(f"http://127.0.0.1:{port}/api", time.monotonic(), time.monotonic() - began)
        procfile = [str(bin_dir / "honcho"), "start", "-f", "Procfile", "web", "worker", "beat"]
        proc = subprocess.Popen(
            procfile, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while True:
                try:
                    if requests.get(f"{service.api}/openapi.json", timeout=30).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.05)
                if time.monotonic() - service.started > 120:
                    raise SystemExit("the service did not answer within 120 s")
            yield service
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def sign_up(api: str, name: str = "bench") -> dict[str, str]:
    creds = {"username": name, "email": f"{name}@example.com", "password": "Correct-Horse-42-bench"}
    requests.post(f"{api}/auth/register", json=creds, timeout=60).raise_for_status()
    login = requests.post(f"{api}/auth/login", json={"username": name, "password": creds["password"]}, timeout=60)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def print_table(results: list[tuple[Path, dict[str, float | str]]]) -> None:
    """One row per figure, one column per checkout, the last against the first as a ratio."""
    base = results[0][1]
    names = "".join(f"{c.name:>12}" for c, _ in results)
    print(f"{'figure':<44}{names}" + ("   ratio" if len(results) > 1 else ""))
    for name, value in base.items():
        if isinstance(value, str):
            continue
        row = f"{name:<44}" + "".join(f"{r[name]:>12.2f}" for _, r in results)
        if len(results) > 1 and value:
            row += f"   {results[-1][1][name] / value:.2f}x"
        print(row)
    for name, value in base.items():
        if isinstance(value, str):
            for checkout, figures in results:
                print(f"{name} ({checkout.name}): {figures[name]}")

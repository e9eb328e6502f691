"""The service (web, worker and beat from the Procfile) with the VirusTotal emulator as its
VirusTotal, on embedded defaults in a folder of its own: what `make try` and `make demo` run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gave up waiting for {what}")


class Stack:
    """Start with `with Stack(...) as stack:`; everything started is stopped on the way out."""

    def __init__(
        self,
        workdir: Path,
        log: IO[str],
        *,
        web_port: int,
        vt_port: int,
        emulator_args: list[str],
        env: dict[str, str] | None = None,
        root: Path = ROOT,
        processes: tuple[str, ...] = ("web", "worker", "beat"),
    ) -> None:
        # root: the checkout whose Procfile runs (a benchmark compares another checkout's code).
        self.workdir, self.log, self.root, self.processes = workdir, log, root, processes
        self.vt_url = f"http://127.0.0.1:{vt_port}"
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.api = f"{self.web_url}/api"
        self.emulator_args = ["--port", str(vt_port), *emulator_args]
        self.env = {
            **os.environ,
            # The Procfile names gunicorn and celery bare, as a platform's PATH has them.
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "INSTANCE_DIR": str(workdir),
            "VT_API_URL": f"{self.vt_url}/api/v3",
            "PORT": str(web_port),
            **(env or {}),
        }
        self.procs: list[subprocess.Popen] = []

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start one more process beside the stack; it is stopped with the stack."""
        proc = subprocess.Popen(
            args,
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def __enter__(self) -> Stack:
        try:
            self.spawn([str(BIN / "python"), "-m", "vt_emulator", *self.emulator_args])
            migrate = [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"]
            subprocess.run(migrate, cwd=self.root, env=self.env, check=True, stdout=self.log, stderr=subprocess.STDOUT)
            self.spawn([str(BIN / "honcho"), "start", "-f", "Procfile", *self.processes])
            wait_until(lambda: requests.get(f"{self.vt_url}/_emulator/counts", timeout=2).ok, "the emulator")
            ready = f"{self.api}/health/ready"
            wait_until(lambda: requests.get(ready, timeout=5).status_code == 200, "the service", 90)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()

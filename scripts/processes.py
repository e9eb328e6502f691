"""Starting the service's processes from a script or a benchmark: the VirusTotal emulator, the
database migration and the Procfile's entries (through honcho, as a platform runs them), each in
a process group of its own with its output in one log, and stopping every one of them.

`scripts/stack.py` (make try, make demo) and `bench/load/` (make load) both start the service
with it."""

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

ROOT = Path(__file__).resolve().parents[1]
BIN_DEFAULT = Path(sys.executable).parent  # this interpreter's virtualenv
# The emulator's module: the one place that names it.
VT_EMULATOR_MODULE = os.environ.get("VT_EMULATOR_MODULE", "vt_emulator")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, limit: float = 60) -> None:
    """Until `check()` is true (a failed connection counts as not yet), or exit after `limit` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:  # refused, reset, timed out (requests' errors are OSErrors too)
            pass
        time.sleep(0.2)
    raise SystemExit(f"gave up waiting for {what}")


class Processes:
    """What one run started; `stop()` ends them all (a group each: honcho's children too).

    `root` is the checkout whose code runs (another one can be measured against this one) and
    `bin_dir` its virtualenv's scripts."""

    def __init__(self, env: dict[str, str], log: IO[str], root: Path = ROOT, bin_dir: Path | None = None) -> None:
        self.env, self.log, self.root = env, log, root
        self.bin = bin_dir or (BIN_DEFAULT if root == ROOT else root / ".venv" / "bin")
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(  # noqa: S603
            args, cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def run(self, args: list[str]) -> None:
        subprocess.run(args, cwd=self.root, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, check=True)  # noqa: S603

    def emulator(self, *args: str) -> subprocess.Popen:
        return self.start("emulator", [str(self.bin / "python"), "-m", VT_EMULATOR_MODULE, *args])

    def migrate(self) -> None:
        self.run([str(self.bin / "flask"), "--app", "wsgi", "db", "upgrade"])

    def procfile(self, *names: str) -> subprocess.Popen:
        """The Procfile's entries, which name gunicorn and celery bare: PATH must have ours first."""
        return self.start("+".join(names), [str(self.bin / "honcho"), "start", "-f", "Procfile", *names])

    def stop(self, grace: float = 15) -> None:
        started = list(self.procs.values())
        for proc in reversed(started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

"""The service (web, worker and beat from the Procfile) with the VirusTotal emulator as its
VirusTotal, on embedded defaults in a folder of its own: what `make try` and `make demo` run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import requests
from processes import BIN_DEFAULT, ROOT, Processes, free_port, wait_until

__all__ = ["ROOT", "Stack", "free_port"]


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
    ) -> None:
        self.workdir, self.log = workdir, log
        self.vt_url = f"http://127.0.0.1:{vt_port}"
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.api = f"{self.web_url}/api"
        self.emulator_args = ["--port", str(vt_port), *emulator_args]
        self.env = {
            **os.environ,
            # The Procfile names gunicorn and celery bare, as a platform's PATH has them.
            "PATH": f"{BIN_DEFAULT}{os.pathsep}{os.environ.get('PATH', '')}",
            "INSTANCE_DIR": str(workdir),
            "VT_API_URL": f"{self.vt_url}/api/v3",
            "PORT": str(web_port),
            **(env or {}),
        }
        self.processes = Processes(self.env, log)

    def __enter__(self) -> Stack:
        try:
            self.processes.emulator(*self.emulator_args)
            self.processes.migrate()
            self.processes.procfile("web", "worker", "beat")
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
        self.processes.stop()

"""schemathesis against the app, for the test_contract_*.py files: the app served on a loopback
port, every check enabled, the formats of tests/system/schemathesis_formats.py taught to the
generator, and the run's figures read from its own report.

The passes are split by feature across files so that `pytest -n 2 --dist loadfile` runs two at a
time; together they send at least MIN_TOTAL generated requests (test_contract_*.py each assert
their share).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.system.schemathesis_formats import VT_KEYS_ENV

ROOT = Path(__file__).resolve().parents[2]
MIN_TOTAL = 2000
COMMON_ARGS = [
    "--checks=all",
    "--seed=14",
    "--workers=1",
    "--generation-database=none",
    "--no-color",
    "--suppress-health-check=all",
]
# Logging out would revoke the token the run uses; readiness answers 503 without a worker by
# design (tests/system/test_health.py); live streams wait for a worker that these runs do not start.
LEFT_OUT = ["--exclude-path=/api/auth/logout", "--exclude-path=/api/health/ready", "--exclude-path-regex=^/api/stream"]


ALL_PHASES = "--phases=examples,coverage,fuzzing,stateful"
# Each pass: its operations, its phases and how many test cases it must generate at least (about
# 90% of what seed 14 generates); the minimums add up to more than MIN_TOTAL. Keys and scans are
# apart: a key another pass deactivates would have a scan refused with seed 001's 400 ("API key is
# not active", "No active API key found"), a refusal that depends on state no schema can tell.
PASSES: dict[str, tuple[list[str], int]] = {
    "accounts": (
        ["--include-path-regex=^/api/(auth|keys|health)", "--exclude-path=/api/auth/users", ALL_PHASES, "-n", "10"],
        490,
    ),
    # No link among these reports: no stateful phase.
    "admin": (
        ["--include-path-regex=^/api/(admin|providers|auth/users)", "--phases=examples,coverage,fuzzing", "-n", "10"],
        240,
    ),
    "files": (["--include-path-regex=^/api/(files|scan)", ALL_PHASES, "-n", "10"], 960),
    "lookups": (
        [
            "--include-path-regex=^/(api/(check_ioc|lookup|bulk)|(get|refresh)_virustotal_report/)",
            ALL_PHASES,
            "-n",
            "8",
        ],
        680,
    ),
    "anonymous": (["--phases=examples,fuzzing", "-n", "5"], 190),
}
assert sum(minimum for _, minimum in PASSES.values()) >= MIN_TOTAL


@dataclass
class Figures:
    generated: int = 0
    requests: int = 0
    checks: int = 0
    failed_checks: int = 0
    failures: list[str] = field(default_factory=list)
    output: str = ""

    def __str__(self) -> str:
        return (
            f"{self.generated} test cases, {self.requests} requests, {self.checks} checks, {self.failed_checks} failed"
        )


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def served(app, monkeypatch):
    """The app on a free loopback port, its rate limits out of the way of a few thousand requests."""
    from scanner.rate_limits import limiter

    monkeypatch.setattr(limiter, "enabled", False)
    monkeypatch.setitem(app.config, "AUTH_RATE_LIMIT", "100000 per minute")
    monkeypatch.setitem(app.config, "KEY_CHECK_RATE_LIMIT", "100000 per minute")
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def vt_keys_file(vt_emulator, tmp_path) -> Path:
    """Keys VirusTotal (the emulator) accepts: the values the `vt-api-key` format draws from."""
    keys = [secrets.token_hex(32) for _ in range(20)]
    for key in keys:
        vt_emulator.add_key(key, per_minute=100_000, per_day=10_000_000)
    path = tmp_path / "vt-keys.txt"
    path.write_text("\n".join(keys))
    return path


def schemathesis(url: str, args: list[str], workdir: Path, vt_keys: Path, token: str | None = None) -> Figures:
    """One `schemathesis run`; the figures come from its NDJSON event stream."""
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/api/openapi.json"]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    events = workdir / "events.ndjson"
    command += [*COMMON_ARGS, *LEFT_OUT, *args, "--report=ndjson", f"--report-ndjson-path={events}"]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.system.schemathesis_formats",
        "PYTHONPATH": str(ROOT),
        VT_KEYS_ENV: str(vt_keys),
    }
    # Without a token means without one: no account signed up on the run's behalf.
    (workdir / "schemathesis.toml").write_text("[auth]\nauto-signup = false\n")
    # In a folder of its own: schemathesis keeps a cache of what it found where it runs.
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir, env=env)
    (workdir / "output.txt").write_text(run.stdout)
    figures = _read_events(events)
    figures.output = run.stdout[-20000:]
    summary = re.search(r"(\d+) generated", run.stdout)
    figures.generated = int(summary.group(1)) if summary else 0
    if run.returncode != 0 and not figures.failures:
        figures.failures.append(f"schemathesis exited with {run.returncode}")
    return figures


def _read_events(path: Path) -> Figures:
    figures = Figures()
    if not path.exists():
        return figures
    for line in path.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]  # a skipped scenario records its label alone
        figures.requests += len(recorder.get("interactions", {}))
        for case_id, checks in recorder.get("checks", {}).items():
            figures.checks += len(checks)
            failed = [check["name"] for check in checks if check["status"] == "failure"]
            figures.failed_checks += len(failed)
            figures.failures += [f"{recorder['label']} {case_id}: {name}" for name in failed]
    return figures


def check_pass(name: str, url: str, workdir: Path, vt_keys: Path, token: str | None = None) -> Figures:
    """Run the pass `name` of PASSES: no check fails, and it generated its share of test cases.
    Its figures are printed (`pytest -s` shows them)."""
    args, minimum = PASSES[name]
    figures = schemathesis(url, args, workdir, vt_keys, token)
    print(f"schemathesis {name}: {figures}")  # noqa: T201
    assert figures.failures == [], figures.output
    assert figures.generated >= minimum, figures.output[-3000:]
    return figures

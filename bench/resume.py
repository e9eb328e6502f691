"""How long a killed worker's scans wait before another worker takes them up again.

New files are scanned by one `celery worker` (2 processes) beside `celery beat`, against an
emulator that answers every request after a delay, so steps are caught half way. Once a few scans
are under way the worker is SIGKILLed (parent and pool, as an OOM kill or a lost machine would)
and a fresh worker is started at once. Figures: for the scans that were unfinished at the kill,
how long until each was stepped again (the last one is the figure that matters), and how long
until all were finished; the baseline is the same batch finishing with no kill, in the same run.
The lease, grace and sweep settings are the code's defaults.

    .venv/bin/python bench/resume.py [--files 12] [--latency-ms 300]

BENCH_ROOT, BENCH_DATABASE_URL and BENCH_REDIS_URL as in bench/pipeline.py.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pipeline import (
    BUDGET,
    ROOT,
    TERMINAL,
    EmulatorProcess,
    Workers,
    _ok,
    fresh_app,
    make_samples,
)

KILL_AFTER = 4  # scans stepped at least once before the kill


def start_beat(env: dict[str, str], workdir: Path) -> subprocess.Popen:
    celery = str(Path(sys.executable).with_name("celery"))
    name = f"beat-{uuid.uuid4().hex[:6]}"
    log = (workdir / f"{name}.log").open("w")
    return subprocess.Popen(
        [celery, "-A", "worker", "beat", "--loglevel", "WARNING", "--schedule", str(workdir / name)],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def scan_rows(app) -> dict[uuid.UUID, tuple[str, object]]:
    from sqlalchemy import select

    from scanner.extensions import db
    from scanner.scans.models import Scan

    with app.app_context():
        rows = {
            row.id: (row.status, row.updated_at)
            for row in db.session.execute(select(Scan.id, Scan.status, Scan.updated_at))
        }
        db.session.remove()
    return rows


def run_batch(app, client, headers, samples, workdir: Path, kill_after: int | None) -> dict:
    """Scan the samples; with `kill_after`, SIGKILL the worker once that many scans have been stepped."""
    env = os.environ.copy()
    workers = Workers(env, 2, workdir / f"worker-{uuid.uuid4().hex[:6]}.log")
    beat = start_beat(env, workdir)
    replacement = None
    try:
        workers.wait_ready(app)
        start = time.monotonic()
        for s in samples:  # the user has a key: each upload starts a scan
            _ok(client.post("/api/files/upload", data={"file": (io.BytesIO(s.content), s.name)}, headers=headers), 201)
        mine = None
        killed_at = None
        resumed: dict[uuid.UUID, float] = {}
        while True:
            rows = scan_rows(app)
            if mine is None:
                mine = {scan_id for scan_id, (status, _) in rows.items() if status not in TERMINAL}
                baseline_rows = rows
            if kill_after is not None and killed_at is None:
                moved = sum(1 for scan_id in mine if rows[scan_id][1] != baseline_rows[scan_id][1])
                if moved >= kill_after:
                    os.killpg(workers.proc.pid, signal.SIGKILL)
                    workers.proc.wait(10)
                    killed_at, at_kill = time.monotonic(), rows
                    unfinished = {s for s in mine if rows[s][0] not in TERMINAL}
                    replacement = Workers(env, 2, workdir / f"worker-{uuid.uuid4().hex[:6]}.log")
            if killed_at is not None:
                now = time.monotonic()
                for scan_id in unfinished - resumed.keys():
                    if rows[scan_id][1] != at_kill[scan_id][1]:
                        resumed[scan_id] = now - killed_at
            if all(rows[s][0] in TERMINAL for s in mine):
                break
            if time.monotonic() - start > 900:
                raise TimeoutError("scans did not finish within 15 minutes")
            time.sleep(0.2)
        finished = time.monotonic()
        statuses = {rows[s][0] for s in mine}
    finally:
        for w in (workers, replacement):
            if w is not None:
                w.stop()
        beat.terminate()
        beat.wait(30)
    if killed_at is None:
        return {"seconds": finished - start, "statuses": statuses}
    return {
        "seconds": finished - start,
        "statuses": statuses,
        "unfinished_at_kill": len(unfinished),
        "last_resumed": max(resumed.values(), default=0.0),
        "first_resumed": min(resumed.values(), default=0.0),
        "all_done_after_kill": finished - killed_at,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--latency-ms", type=int, default=300, help="the emulator's delay on every request")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    emulator = EmulatorProcess()
    try:
        app, client, headers = fresh_app(workdir, emulator.url)
        emulator._post("config", json={"queued_seconds": 1.0, "progress_seconds": 1.0})
        emulator._post("faults", json={"latency_ms": args.latency_ms})
        value = secrets.token_hex(32)
        emulator.add_key(value, **BUDGET)
        _ok(client.post("/api/keys/", json={"name": "bench", "key_value": value, **BUDGET}, headers=headers), 201)

        batches = []
        for name in ("a", "b"):
            (workdir / name).mkdir()
            batches.append(make_samples(workdir / name, args.files))
        baseline = run_batch(app, client, headers, batches[0], workdir, None)
        killed = run_batch(app, client, headers, batches[1], workdir, KILL_AFTER)
        config = app.config
    finally:
        emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    database, broker = config["SQLALCHEMY_DATABASE_URI"].split(":")[0], config["CELERY"]["broker_url"].split(":")[0]
    print(
        f"\n{args.files} new files a batch, emulator latency {args.latency_ms} ms, 2 worker processes + beat, "
        f"{database} database, {broker} broker"
    )
    print(
        f"settings: SCAN_LEASE_SECONDS={config['SCAN_LEASE_SECONDS']:g} SCAN_STUCK_GRACE_SECONDS="
        f"{config['SCAN_STUCK_GRACE_SECONDS']:g} SCAN_SWEEP_SECONDS={config['SCAN_SWEEP_SECONDS']:g}\n"
    )
    print(f"{'run':<52} {'seconds':>8}")
    print("-" * 62)
    print(f"{'baseline: the batch, no kill':<52} {baseline['seconds']:8.1f}")
    print(f"{'killed: the batch, worker SIGKILLed mid-batch':<52} {killed['seconds']:8.1f}")
    print(f"{'  scans unfinished at the kill':<52} {killed['unfinished_at_kill']:8d}")
    print(f"{'  kill -> first of them stepped again':<52} {killed['first_resumed']:8.1f}")
    print(f"{'  kill -> last of them stepped again':<52} {killed['last_resumed']:8.1f}")
    print(f"{'  kill -> all finished':<52} {killed['all_done_after_kill']:8.1f}")
    print("-" * 62)
    print(f"{'ratio killed / baseline (batch seconds)':<52} {killed['seconds'] / baseline['seconds']:8.2f}")
    print(f"statuses: baseline {sorted(baseline['statuses'])}, killed {sorted(killed['statuses'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the shared counters (scanner/metrics/) cost a request or a task that counted something.

Times an app context that ends (as each request and task does) with three counts stored at once
(METRICS_FLUSH_SECONDS=0) in Redis (one MULTI/EXEC of HINCRBYs) or in the database (one upsert:
embedded mode, or Redis away), and with the default batching (METRICS_FLUSH_SECONDS=1: at most one
store a second), against a baseline measured in the same run: the same context with three
increments of a process-local prometheus-client Counter, which is what they replaced and which a
worker on another machine could never show.

    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/shared_counters.py [--runs 2000]

Without REDIS_URL the Redis row is left out. DATABASE_URL (default: SQLite in a temporary folder)
is where the database row writes. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(runs: int, body: Callable[[], None]) -> float:
    """Median microseconds of one run of `body`."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        body()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs
    workdir = tempfile.mkdtemp(prefix="bench-counters-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir}/bench.db")
    os.environ.setdefault("INSTANCE_DIR", workdir)
    redis_url = os.environ.pop("REDIS_URL", None)

    from prometheus_client import CollectorRegistry, Counter

    from scanner import create_app
    from scanner.extensions import db
    from scanner.metrics import SharedCounter

    apps = {}
    for interval in ("0", "1"):
        os.environ["METRICS_FLUSH_SECONDS"] = interval
        apps[interval] = create_app("development")
    with apps["0"].app_context():
        db.create_all()
    local = Counter("bench_local_total", "process-local", ["endpoint", "outcome"], registry=CollectorRegistry())
    shared = SharedCounter("bench_shared_total", "shared", ("endpoint", "outcome"))

    def context(app, count: Callable[[str], None]) -> Callable[[], None]:
        def body() -> None:
            with app.app_context():
                for endpoint in ("GET /files", "POST /files", "GET /analyses"):
                    count(endpoint)

        return body

    def local_inc(endpoint: str) -> None:
        local.labels(endpoint, "ok").inc()

    def shared_inc(endpoint: str) -> None:
        shared.inc(endpoint, "ok")

    cases = [("baseline: 3 process-local prometheus-client increments", "0", None, local_inc)]
    cases.append(("app context, nothing counted", "0", None, lambda e: None))
    cases.append(("3 shared increments, each context stored in the database", "0", None, shared_inc))
    cases.append(("3 shared increments, batched (1 s), database", "1", None, shared_inc))
    if redis_url:
        cases.append(("3 shared increments, each context stored in Redis", "0", redis_url, shared_inc))
        cases.append(("3 shared increments, batched (1 s), Redis", "1", redis_url, shared_inc))
    results = []
    for name, interval, redis, count in cases:
        apps[interval].config["REDIS_URL"] = redis
        results.append((name, timed(runs, context(apps[interval], count))))
    base = results[0][1]
    print(f"{'case':62} {'median µs':>10} {'ratio':>8}")
    for name, micros in results:
        print(f"{name:62} {micros:10.1f} {micros / base:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

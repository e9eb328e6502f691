"""What a signed-in request costs the web process on top of its route: rate limits with seed 002's
headers, request counting for /api/providers/metrics, the access log line and Prometheus.

Times GET /api/auth/profile through the Flask test client, N times, in two apps built in the same
run: the service as configured, and the baseline with the limiter off (RATELIMIT_ENABLED=0), which
also skips the limit store's round trips. Set REDIS_URL (a database of your own) to measure with
Redis as the limit and count store; without it both live in this process and SQLite.

    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/request_overhead.py [--requests 2000]

Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "Bench-Password-123"


def build(limiter_on: bool):
    os.environ["RATELIMIT_ENABLED"] = "1" if limiter_on else "0"
    from scanner import create_app
    from scanner.extensions import db

    app = create_app("development")
    with app.app_context():
        db.create_all()
    return app


def timed(app, n: int, user: str) -> list[float]:
    client = app.test_client()
    account = {"username": user, "email": f"{user}@example.com", "password": PASSWORD}
    client.post("/api/auth/register", json=account)
    token = client.post("/api/auth/login", json={"username": user, "password": PASSWORD}).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        assert client.get("/api/auth/profile", headers=headers).status_code == 200
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="bench-overhead-")
    os.environ.update(
        INSTANCE_DIR=instance,
        DATABASE_URL=f"sqlite:///{instance}/bench.db",
        LOG_LEVEL="WARNING",
        RATE_LIMIT_PER_MINUTE="1000000",
        RATE_LIMIT_PER_HOUR="10000000",
        RATELIMIT_DEFAULT="1000000 per minute",
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="1024",
        PASSWORD_HASH_PARALLELISM="1",
    )
    baseline = timed(build(limiter_on=False), args.requests, "bench_base")
    full = timed(build(limiter_on=True), args.requests, "bench_full")
    print(f"{'app':<28}{'median ms':>10}{'p95 ms':>10}")
    for name, samples in (("limiter off (baseline)", baseline), ("as configured", full)):
        p95 = statistics.quantiles(samples, n=20)[-1]
        print(f"{name:<28}{statistics.median(samples):>10.3f}{p95:>10.3f}")
    print(f"ratio (median): {statistics.median(full) / statistics.median(baseline):.2f}")


if __name__ == "__main__":
    main()

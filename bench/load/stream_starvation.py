"""Do open event streams starve the rest of the API? Health probes while N streams are open.

For each checkout (a baseline one given with --baseline, then this one), starts the emulator and
the Procfile's `web` process from that checkout (its own .venv, its own gunicorn.conf.py) on a
fresh database next to DATABASE_URL's and REDIS_URL, signs up analysts who each upload a file
(no worker runs, so every scan, and every stream following one, stays open), opens N scan
streams, then sends health probes with a 5 s timeout. Prints, per checkout and N: the streams
answered, the probes that timed out and the probes' latency.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scanner REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/load/stream_starvation.py --baseline ../base [--streams 15,21,200]
"""

from load import (  # noqa: I001  load patches the standard library for gevent first
    API,
    Http,
    StreamResult,
    follow,
    free_port,
    percentile,
    recreate_database,
    service_env,
    services_for,
    sign_up,
    start_web,
)

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

import gevent
import gevent.pool

ROOT = Path(__file__).resolve().parents[2]
PROBES = 20
PROBE_TIMEOUT = 5.0


def probe(port: int) -> float | None:
    """A health probe on a connection of its own, given PROBE_TIMEOUT seconds."""
    started = time.monotonic()
    try:
        if Http("127.0.0.1", port, timeout=PROBE_TIMEOUT).get(f"{API}/health").status != 200:
            return None
    except OSError:
        return None
    return (time.monotonic() - started) * 1000


def measure(root: Path, counts: list[int]) -> list[tuple]:
    database, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    vt_port, web_port = free_port(), free_port()
    env = service_env(recreate_database(database), redis_url, vt_port, web_port, root / ".venv" / "bin")
    services = services_for(env, "starvation.log", root)
    env["STREAM_MAX_PER_USER"] = "3"
    env["STREAM_HEARTBEAT_SECONDS"] = "1"  # a closed stream is noticed within a second
    http = Http("127.0.0.1", web_port)
    vt_key = secrets.token_hex(32)
    rows = []
    try:
        start_web(services, http, vt_port, vt_key)
        users = max(counts) // 3 + 1
        analysts = gevent.pool.Pool(10).map(lambda n: sign_up(http, n, vt_key), range(users))
        for count in counts:
            results = [StreamResult() for _ in range(count)]
            group = gevent.pool.Group()
            opened_at = time.monotonic()
            for n, result in enumerate(results):
                analyst = analysts[n % len(analysts)]
                path = f"{API}/stream/scans/{analyst.scan_id}"
                group.spawn(follow, http, path, analyst, opened_at, result, 60)
            gevent.sleep(3)
            probes = gevent.pool.Group()
            jobs = []
            for _ in range(PROBES):
                jobs.append(probes.spawn(probe, web_port))
                gevent.sleep(0.25)
            probes.join()
            answered = sum(r.status_code == 200 for r in results)
            latencies = [j.value for j in jobs if j.value is not None]
            rows.append((root.name, count, answered, PROBES - len(latencies), percentile(latencies, 50)))
            group.kill()
            gevent.sleep(4)  # the server notices the closed streams at their next heartbeat
    finally:
        services.stop()
        services.log.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with (its .venv installed)")
    parser.add_argument("--streams", default="15,21", help="how many streams to open, in turn")
    args = parser.parse_args()
    counts = [int(x) for x in args.streams.split(",")]
    rows = []
    for root in [args.baseline.resolve()] * bool(args.baseline) + [ROOT]:
        rows += measure(root, counts)
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print(f"{'checkout':<12}{'streams':>8}{'answered':>10}{'health probes timed out':>25}{'probe p50 ms':>14}")
    for name, count, answered, timed_out, p50 in rows:
        print(f"{name:<12}{count:>8}{answered:>10}{f'{timed_out} of {PROBES}':>25}{p50:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What one request and one open stream cost a web worker, in CPU time and memory, measured on
the worker process itself (so the figures hold even on a machine shared with other work).

Starts the emulator and the Procfile's `web` process with one gevent worker on a fresh database
next to DATABASE_URL's and REDIS_URL, signs up analysts, then: the worker's CPU time over N
requests of each kind of the mixed load, one after another; the CPU and memory of opening S scan
streams; the CPU the open streams take per second while they wait (heartbeats every
STREAM_HEARTBEAT_SECONDS). Prints a table with what one core carries at those costs.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/scanner REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/load/cost.py [--requests 200 --streams 200 --heartbeat 15]
"""

from load import (  # noqa: I001  load patches the standard library for gevent first
    API,
    MIX,
    ROOT,
    Http,
    MixedLoad,
    Processes,
    StreamResult,
    follow,
    free_port,
    recreate_database,
    service_env,
    services_for,
    sign_up,
    start_web,
    wait_until,
)

import argparse
import os
import secrets
import sys
import time

import gevent
import gevent.pool
import psutil


def worker_of(services: Processes) -> psutil.Process:
    """The one gunicorn worker under honcho > gunicorn master."""
    honcho = psutil.Process(services.procs["web"].pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        gunicorns = [p for p in honcho.children(recursive=True) if "gunicorn" in " ".join(p.cmdline())]
        workers = [p for p in gunicorns if p.parent() in gunicorns and not p.children()]
        if workers:
            return workers[0]
        time.sleep(0.2)
    raise SystemExit("no gunicorn worker found")


def cpu_ms(process: psutil.Process) -> float:
    times = process.cpu_times()
    return (times.user + times.system) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--heartbeat", type=float, default=15.0)
    args = parser.parse_args()
    vt_port, web_port = free_port(), free_port()
    database = recreate_database(os.environ["DATABASE_URL"])
    services = services_for(
        service_env(database, os.environ["REDIS_URL"], vt_port, web_port, ROOT / ".venv" / "bin"), "cost.log"
    )
    services.env |= {
        "WEB_CONCURRENCY": "1",
        "STREAM_HEARTBEAT_SECONDS": str(args.heartbeat),
        "STREAM_MAX_PER_USER": "3",
    }
    http = Http("127.0.0.1", web_port)
    vt_key = secrets.token_hex(32)
    rows: list[tuple[str, str]] = []
    try:
        start_web(services, http, vt_port, vt_key)
        worker = worker_of(services)
        analysts = gevent.pool.Pool(5).map(lambda n: sign_up(http, n, vt_key), range(args.streams // 3 + 1))
        load = MixedLoad(http, analysts)
        load.one("cached lookup")  # fills the cache
        for kind, _ in MIX:
            before = cpu_ms(worker)
            for _ in range(args.requests):
                load.one(kind)
            per_request = (cpu_ms(worker) - before) / args.requests
            rows.append((f"{kind}: worker CPU per request (ms)", f"{per_request:.1f}"))
        errors = sum(load.errors.values())

        rss_before, before = worker.memory_info().rss, cpu_ms(worker)
        results = [StreamResult() for _ in range(args.streams)]
        group = gevent.pool.Group()
        opened_at = time.monotonic()
        for n, result in enumerate(results):
            analyst = analysts[n % len(analysts)]
            group.spawn(follow, http, f"{API}/stream/scans/{analyst.scan_id}", analyst, opened_at, result, 600)
        wait_until(lambda: all(r.first_event_ms is not None or r.error for r in results), "the streams")
        opened = sum(r.status_code == 200 for r in results)
        gevent.sleep(2)
        rows.append(("streams opened", str(opened)))
        rows.append(("opening a stream: worker CPU (ms)", f"{(cpu_ms(worker) - before) / args.streams:.1f}"))
        rows.append(
            (
                "an open stream: worker memory (KB)",
                f"{(worker.memory_info().rss - rss_before) / 1024 / args.streams:.0f}",
            )
        )
        before, started = cpu_ms(worker), time.monotonic()
        gevent.sleep(args.heartbeat * 2)
        waiting = (cpu_ms(worker) - before) / (time.monotonic() - started)
        rows.append((f"{opened} open streams: worker CPU per second (ms)", f"{waiting:.1f}"))
        group.kill()
        rows.append(("errors", str(errors + sum(1 for r in results if r.error))))
    finally:
        services.stop()
        services.log.close()
    print(f"\n{'one gevent worker, heartbeat ' + format(args.heartbeat, 'g') + ' s':<52}{'value':>10}")
    for name, value in rows:
        print(f"{name:<52}{value:>10}")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

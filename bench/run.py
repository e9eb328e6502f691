"""`make bench`: every benchmark that `run()`s, one after another, in one table.

Each module named in BENCHES exposes `run() -> list[dict]`, one dict per figure with the keys
figure, unit, value, baseline, ratio, target, met (bench/figures.py); it starts what it needs
itself (the Procfile's web process, the workers and the VirusTotal emulator, through
scripts/stack.py) and stops it, in a process of its own. A module whose file is missing is
skipped; one that fails is a row that says so, and the others still run.

PostgreSQL and Redis are used when they answer: BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/scanner_bench, created if missing, emptied and migrated;
bench/history.py fills `<name>_history` beside it) and BENCH_REDIS_URL (default
redis://127.0.0.1:6379/12, flushed). Without them the benchmarks that can run embedded do, on
SQLite.

The table is printed and written, with the CPU count, the load and the commit, to
bench/results/<UTC time>-<commit>.json and bench/results/latest.json.

    .venv/bin/python bench/run.py [--only pipeline,upload]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

# The reads first: history's 200,000 rows leave PostgreSQL a checkpoint to write, and a cached
# check_ioc, which commits its lookup row, measured behind it ran at a quarter of its rate.
BENCHES = ("reads", "pipeline", "upload", "history")
COLUMNS = ("figure", "unit", "value", "baseline", "ratio", "target", "met")
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/scanner_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"


def _postgres(url: str) -> bool:
    """True when the server answers; the database is created when it is missing."""
    import psycopg

    parts = urlparse(url.replace("postgresql+psycopg://", "postgresql://"))
    name = parts.path.lstrip("/")
    try:
        with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True, connect_timeout=3) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error:
        return False
    return True


def _redis(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def services() -> dict[str, str]:
    """BENCH_DATABASE_URL and BENCH_REDIS_URL for the benchmarks, where the servers answer."""
    found = {}
    database = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE
    if _postgres(database):
        found["BENCH_DATABASE_URL"] = database
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS
    if _redis(redis_url):
        found["BENCH_REDIS_URL"] = redis_url
    return found


def _commit() -> str:
    """The measured checkout's commit (BENCH_ROOT's when set)."""
    measured = os.environ.get("BENCH_ROOT") or ROOT
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=measured, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=measured, capture_output=True)
    return (done.stdout.strip() or "unknown") + ("-dirty" if dirty.stdout.strip() else "")


# Each benchmark runs in a process of its own: what one sets up (environment, imported app) never
# leaks into the next.
CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
rows = __import__(sys.argv[2]).run()
with open(sys.argv[3], "w") as out:
    json.dump(rows, out, default=str)
"""


def _run_one(name: str) -> list[dict]:
    started = time.monotonic()
    print(f"== {name}", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run([sys.executable, "-c", CHILD, str(HERE), name, out.name], cwd=ROOT, check=False)
        text = Path(out.name).read_text()
    if done.returncode != 0 or not text:
        rows = [{"figure": f"{name}: did not run (exit status {done.returncode}, see above)", "met": False}]
    else:
        rows = json.loads(text)
    for row in rows:
        row["bench"] = name
    print(f"== {name}: {time.monotonic() - started:.0f} s", flush=True)
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict]) -> str:
    cells = [[_cell(row.get(column)) for column in COLUMNS] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(COLUMNS)]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in [list(COLUMNS), *cells]
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated benchmarks to run (default: all of " + ", ".join(BENCHES) + ")")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else [name for name in BENCHES if (HERE / f"{name}.py").exists()]

    os.environ.update(services())
    load_before, started = os.getloadavg(), datetime.now(UTC)
    rows = [row for name in names for row in _run_one(name)]
    load_after = os.getloadavg()
    commit = _commit()
    result = {
        "commit": commit,
        "started": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "python": platform.python_version(),
        "database": "postgresql" if os.environ.get("BENCH_DATABASE_URL") else "sqlite",
        "redis": bool(os.environ.get("BENCH_REDIS_URL")),
        "rows": rows,
    }
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    text = json.dumps(result, indent=2, default=str)
    (folder / f"{started:%Y%m%dT%H%M%SZ}-{commit}.json").write_text(text)
    (folder / "latest.json").write_text(text)

    print(
        f"\ncommit {commit}, {result['cpus']} CPUs, {result['database']} + "
        f"{'Redis' if result['redis'] else 'no Redis'}, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after ({started:%Y-%m-%d %H:%M} UTC)\n"
    )
    print(table(rows))
    return 0 if all(row.get("met") is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""History of a user with 100,000 scans on PostgreSQL: how long GET /api/scan/results takes.

Seeds one analyst with 100,000 scans (plus other users' scans as noise) into a database of its
own next to BENCH_DATABASE_URL's (or DATABASE_URL's; `<name>_history`, dropped afterwards), built
by the migrations as a deploy builds it, then times typical history requests through the Flask
test client: cold (the user's cache version bumped before every request, so each one reads the
database) and warm (the same request served from the cache). The baseline is measured in the same
run: the same cold requests once the history indexes (per user on `scans`, by filename on
`files`) are dropped. Target: every cold request under 50 ms.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/13 \\
        .venv/bin/python bench/history.py [--scans 100000] [--runs 15]

Without REDIS_URL the cache is the embedded file-system cache. `run()` is what `make bench` calls.
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_MS = 50.0
PASSWORD = "Bench-Password-123"
WORDS = ("invoice", "report", "setup", "update", "payload", "scan", "photo", "contract", "driver", "backup")
EXTENSIONS = ("exe", "pdf", "docx", "zip", "dll", "js", "png")
QUERIES = [
    ("first page (default: newest first)", "per_page=10"),
    ("first page, 100 per page", "per_page=100"),
    ("deep page (offset 90,000)", "page=901&per_page=100"),
    ("last page (pending scans)", "page=1000&per_page=100"),
    ("status=completed&verdict=malicious", "status=completed&verdict=malicious"),
    ("detection_min=5, most detected first", "detection_min=5&sort_by=detection_ratio&sort_order=desc"),
    ("multi-sort detection_ratio:desc,scan_date:asc", "sort_by=detection_ratio:desc,scan_date:asc"),
    ("date range (one month)", "date_from=2025-03-01&date_to=2025-03-31"),
    ("filename substring", "filename=invoice-12"),
    ("hash prefix (sha256/sha1/md5)", "hash=abcd"),
    ("sort by filename", "sort_by=filename&sort_order=asc"),
]


def _server_url(url: str, database: str) -> str:
    return urlparse(url)._replace(path=f"/{database}").geturl()


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def bench_database(base_url: str) -> str:
    """The database this benchmark fills and drops: named after the given one, so two people
    sharing a server never drop each other's."""
    return f"{urlparse(base_url).path.lstrip('/') or 'scanner'}_history"


def recreate_database(base_url: str) -> str:
    name = bench_database(base_url)
    with psycopg.connect(_psycopg_url(base_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return _server_url(base_url, name)


def drop_database(base_url: str) -> None:
    with psycopg.connect(_psycopg_url(base_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {bench_database(base_url)} WITH (FORCE)")


def register(client, username: str) -> tuple[uuid.UUID, dict[str, str]]:
    email = f"{username}@example.com"
    r = client.post("/api/auth/register", json={"username": username, "email": email, "password": PASSWORD})
    assert r.status_code == 201, r.json
    r = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.json
    return uuid.UUID(r.json["user"]["id"]), {"Authorization": f"Bearer {r.json['access_token']}"}


def _hex(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(length * 4):0{length}x}"


def seed(db_url: str, owners: list[tuple[uuid.UUID, int]], rng: random.Random) -> None:
    """Files and scans with COPY: per owner `count` scans over count/2 files, two years of dates,
    5% still scanning, 2% failed, detections skewed the way real traffic is (most files clean)."""
    from scanner.files.models import File
    from scanner.scans.models import Scan

    now = datetime(2025, 6, 1, tzinfo=UTC)
    files, scans = [], []
    for owner, count in owners:
        owner_files = []
        for i in range(max(1, count // 2)):
            sha256 = _hex(rng, 64)
            file = {
                "id": uuid.uuid4(),
                "user_id": owner,
                "filename": f"{rng.choice(WORDS)}-{i}.{rng.choice(EXTENSIONS)}",
                "file_size": rng.randrange(1, 10**7),
                "mime_type": "application/octet-stream",
                "md5": _hex(rng, 32),
                "sha1": _hex(rng, 40),
                "sha256": sha256,
                "blob_key": f"bench/{sha256}",
                "upload_date": now - timedelta(seconds=rng.randrange(730 * 86400)),
            }
            owner_files.append(file["id"])
            files.append(file)
        for _ in range(count):
            created = now - timedelta(seconds=rng.randrange(730 * 86400))
            roll = rng.random()
            status = "scanning" if roll < 0.05 else ("failed" if roll < 0.07 else "completed")
            scan = {"id": uuid.uuid4(), "user_id": owner, "file_id": rng.choice(owner_files), "status": status}
            scan |= {"created_at": created, "updated_at": created, "stage": "done" if status == "completed" else status}
            if status == "completed":
                detections = rng.random()
                malicious = 0 if detections < 0.7 else (rng.randint(1, 5) if detections < 0.9 else rng.randint(6, 60))
                suspicious, timeout, unsupported = rng.randint(0, 2), rng.randint(0, 3), 2
                undetected = max(0, 70 - malicious - suspicious - timeout)
                scan_date = created + timedelta(seconds=rng.randrange(30, 600))
                scan |= {
                    "malicious": malicious,
                    "suspicious": suspicious,
                    "undetected": undetected,
                    "harmless": 0,
                    "timeout": timeout,
                    "confirmed_timeout": 0,
                    "failure": 0,
                    "type_unsupported": unsupported,
                    "engines_total": malicious + suspicious + undetected + timeout + unsupported,
                    "detection_ratio": f"{malicious}/{malicious + suspicious + undetected}",
                    "scan_date": scan_date,
                    "completed_at": scan_date,
                }
            scans.append(scan)
    with psycopg.connect(_psycopg_url(db_url)) as conn:
        _copy(conn, File.__table__, files)
        _copy(conn, Scan.__table__, scans)
        conn.commit()
    with psycopg.connect(_psycopg_url(db_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE files")
        conn.execute("VACUUM ANALYZE scans")


def _copy(conn, table, rows: list[dict]) -> None:
    """COPY rows into a table; a column a row leaves out gets the model's default, else NULL."""
    defaults = {c.name: c.default.arg for c in table.columns if c.default is not None and c.default.is_scalar}
    columns = [c.name for c in table.columns]
    with conn.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row.get(name, defaults.get(name)) for name in columns])


class DatabaseClock:
    """Wall time spent in the database driver's execute (the round trip and the server's work)."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.engine, self.total, self._started = engine, 0.0, 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *args) -> None:
        self._started = time.perf_counter()

    def _after(self, *args) -> None:
        self.total += time.perf_counter() - self._started

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


def time_request(app, headers, query: str, user_id: uuid.UUID, runs: int, warm: bool) -> tuple[float, float]:
    """Median milliseconds of GET /api/scan/results?query, and of the time its SQL took. Requests
    run outside any app context of ours, so each gets (and ends) its own database session, as in
    production."""
    from scanner.extensions import db
    from scanner.scans.results.cache import bump_scans_version

    client = app.test_client()
    with app.app_context():
        clock = DatabaseClock(db.engine)
    samples, in_database = [], []
    url = f"/api/scan/results?{query}"
    if warm:
        assert client.get(url, headers=headers).status_code == 200  # fill the cache
    try:
        for _ in range(runs):
            if not warm:
                with app.app_context():
                    bump_scans_version(user_id)
            clock.total = 0.0
            start = time.perf_counter()
            response = client.get(url, headers=headers)
            samples.append((time.perf_counter() - start) * 1000)
            in_database.append(clock.total * 1000)
            assert response.status_code == 200, response.json
    finally:
        clock.close()
    return statistics.median(samples), statistics.median(in_database)


def history_indexes(db_url: str) -> list[tuple[str, str]]:
    """The indexes that serve histories: per user on `scans`, by filename on `files`."""
    with psycopg.connect(_psycopg_url(db_url)) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE (tablename = 'scans' AND indexname LIKE 'ix_scans_user_%')"
            " OR (tablename = 'files' AND indexname IN ('ix_files_filename_trgm', 'ix_files_user_lower_filename'))"
        )
        return list(rows)


def drop_indexes(db_url: str, indexes: list[tuple[str, str]]) -> None:
    with psycopg.connect(_psycopg_url(db_url), autocommit=True) as conn:
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("ANALYZE scans")
        conn.execute("ANALYZE files")


def explain(app, headers, user_id: uuid.UUID) -> None:
    """EXPLAIN ANALYZE of each statement a cold history request runs."""
    from sqlalchemy import event

    from scanner.extensions import db
    from scanner.scans.results.cache import bump_scans_version

    client = app.test_client()
    for label, query in QUERIES:
        statements: list[tuple[str, object]] = []

        def capture(conn, cursor, statement, parameters, context, executemany, statements=statements):
            if statement.lstrip().upper().startswith("SELECT") and "FROM scans" in statement:
                statements.append((statement, parameters))

        with app.app_context():
            bump_scans_version(user_id)
            engine = db.engine
        event.listen(engine, "before_cursor_execute", capture)
        client.get(f"/api/scan/results?{query}", headers=headers)
        event.remove(engine, "before_cursor_execute", capture)
        print(f"=== {label}: {query}")
        with engine.connect() as conn:
            for statement, parameters in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).scalars()
                print("\n".join(plan), end="\n\n")


def _migrate(app) -> None:
    """The schema as a deploy builds it: the migrations, with their PostgreSQL-only indexes."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parents[1] / "migrations"))


def measure(scans: int, noise: int, runs: int, explain_only: bool = False) -> dict[str, tuple[float, ...]]:
    """{label: (cold ms, warm ms, cold ms in SQL, cold ms without the history indexes)}."""
    base_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not (base_url or "").startswith("postgres"):
        raise SystemExit("bench/history.py needs PostgreSQL: set BENCH_DATABASE_URL (or DATABASE_URL)")
    db_url = recreate_database(base_url)
    instance = tempfile.mkdtemp(prefix="bench-history-")
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": instance,
            "RATELIMIT_ENABLED": "0",
            "LOG_LEVEL": "WARNING",
            "ENCRYPTION_KEYS": os.environ.get("ENCRYPTION_KEYS", "0ZkRz3tb5u8mG7H6bqkE0Qx0zvN0kqvK1tq0H2m5t3M="),
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        }
    )
    from scanner import create_app
    from scanner.extensions import cache, db

    app = create_app("development")
    try:
        _migrate(app)
        with app.app_context():
            cache.clear()
        client = app.test_client()
        analyst, headers = register(client, "analyst")
        others = [register(client, f"noise{i}")[0] for i in range(4)]
        rng = random.Random(6)
        started = time.perf_counter()
        seed(db_url, [(analyst, scans), *((other, noise) for other in others)], rng)
        seeded = time.perf_counter() - started
        print(f"seeded {scans:,} scans for the analyst and {4 * noise:,} for 4 others in {seeded:.1f} s")
        print(f"cache: {app.config['CACHE_TYPE']}; median of {runs} requests each; times in ms\n")
        if explain_only:
            explain(app, headers, analyst)
            return {}
        results = {}
        for label, query in QUERIES:
            cold, sql = time_request(app, headers, query, analyst, runs, warm=False)
            warm, _ = time_request(app, headers, query, analyst, runs, warm=True)
            results[label] = (cold, warm, sql)
        indexes = history_indexes(db_url)
        drop_indexes(db_url, indexes)
        for label, query in QUERIES:
            results[label] += (time_request(app, headers, query, analyst, max(3, runs // 3), warm=False)[0],)
        print("no index: the same cold request after dropping " + ", ".join(name for name, _ in indexes))
        return results
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop_database(base_url)
        shutil.rmtree(instance, ignore_errors=True)


def run(scans: int = 100_000, noise: int = 25_000, runs: int = 7) -> list[dict]:
    """One row per documented filter and sort: its cold request against the target."""
    from figures import figure

    return [
        figure(
            f"history, {scans // 1000}k scans, cold: {label} (SQL {sql:.0f} ms)",
            "ms",
            cold,
            baseline=baseline,
            target=f"<= {TARGET_MS:g}",
            met=cold <= TARGET_MS,
        )
        for label, (cold, _, sql, baseline) in measure(scans, noise, runs).items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=100_000, help="scans of the analyst whose history is read")
    parser.add_argument("--noise", type=int, default=25_000, help="scans of each of 4 other users")
    parser.add_argument("--runs", type=int, default=15, help="timed requests per figure (median reported)")
    parser.add_argument("--explain", action="store_true", help="print the plan of every statement, then stop")
    args = parser.parse_args()
    results = measure(args.scans, args.noise, args.runs, args.explain)
    if not results:
        return
    width = max(len(label) for label, _ in QUERIES)
    print(f"{'query':<{width}}  {'cold':>8}  {'of it SQL':>9}  {'warm':>8}  {'no index':>9}  {'speed-up':>8}")
    for label, _ in QUERIES:
        cold, warm, sql, baseline = results[label]
        print(f"{label:<{width}}  {cold:8.1f}  {sql:9.1f}  {warm:8.1f}  {baseline:9.1f}  {baseline / cold:7.1f}x")
    print("\ncold: database read (version bumped first), SQL: of it in the driver's execute; warm: from the cache")


if __name__ == "__main__":
    main()

"""No database transaction stays open while VirusTotal is being called: a worker scanning new
files against a slow VirusTotal never shows up in pg_stat_activity as `idle in transaction`
for longer than a call takes."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.files.helpers import uploaded
from tests.fixtures.app import database_is_postgres
from tests.scans.helpers import wait_for_scan

pytestmark = pytest.mark.integration

LATENCY_MS = 1500  # every VirusTotal request, uploads included, takes at least this long
IDLE_IN_TRANSACTION = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = :app"
    " AND state LIKE 'idle in transaction%' AND now() - state_change > make_interval(secs => :secs)"
)


def test_no_transaction_is_open_while_virustotal_answers(app, client, user, add_key, vt_emulator, start_worker):
    if not database_is_postgres():
        pytest.skip("pg_stat_activity: needs TEST_DATABASE_URL on PostgreSQL")
    name = f"scan-worker-{uuid.uuid4().hex[:8]}"
    start_worker(PGAPPNAME=name)
    add_key(user)
    vt_emulator.configure(queued_seconds=0.5, progress_seconds=0.5)
    vt_emulator.set_faults(latency_ms=LATENCY_MS)

    seen: list[int] = []
    done = threading.Event()
    watcher = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])

    def watch() -> None:
        with watcher.connect() as conn:
            while not done.is_set():
                seen.append(conn.execute(IDLE_IN_TRANSACTION, {"app": name, "secs": LATENCY_MS / 2000}).scalar_one())
                conn.rollback()
                time.sleep(0.1)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        scan_ids = [uploaded(client, user, os.urandom(4096), f"new{i}.bin")["scan"]["scan_id"] for i in range(2)]
        statuses = [wait_for_scan(client, user, scan_id)["status"] for scan_id in scan_ids]
    finally:
        done.set()
        thread.join()
        watcher.dispose()

    assert statuses == ["completed", "completed"]
    # Lookup, upload and polls of two scans: a dozen slow calls, each watched several times.
    assert len(seen) > 20 and max(seen) == 0, seen

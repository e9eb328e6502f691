"""Scans as work rows (scanner/work.py) when things go wrong: an error nobody planned for, a step
that outlives its lease, a worker killed with scans in flight. The emulator's request counts
prove what VirusTotal was asked, and how often."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from tests.files.helpers import uploaded
from tests.fixtures.app import database_is_postgres

from .helpers import TERMINAL, wait_for_scan

LOOKUP, UPLOAD = "GET /files/{id}", "POST /files"


@contextmanager
def installed(app, create: list[str], drop: list[str]):
    """The database objects `create` makes, for the block; `drop` takes them away after it."""
    from scanner.extensions import db

    with app.app_context():
        with db.engine.begin() as conn:
            for statement in (*drop, *create):  # what a run stopped midway left is replaced
                conn.execute(text(statement))
        try:
            yield
        finally:
            with db.engine.begin() as conn:
                for statement in drop:
                    conn.execute(text(statement))
            db.session.remove()


def inserts_refused(app, table: str):
    """The database refuses every row of `table`, as a full disk or a broken migration would."""
    if database_is_postgres():
        create = [
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql"
            f" AS $$ BEGIN RAISE EXCEPTION '{table} refused'; END $$",
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}()",
        ]
        drop = [f"DROP TRIGGER IF EXISTS refuse_{table} ON {table}", f"DROP FUNCTION IF EXISTS refuse_{table}()"]
    else:
        create = [f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'refused'); END"]
        drop = [f"DROP TRIGGER IF EXISTS refuse_{table}"]
    return installed(app, create, drop)


def connection_killed_once(app, table: str, when: str):
    """The first UPDATE of `table` for which `when` holds terminates the database connection that
    sends it, as `pg_terminate_backend` or a server restart would at that moment (PostgreSQL)."""
    create = [
        "CREATE SEQUENCE kill_once",
        "CREATE FUNCTION kill_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF {when} AND nextval('kill_once') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;"
        " RETURN NEW; END $$",
        f"CREATE TRIGGER kill_once BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION kill_once()",
    ]
    drop = [
        f"DROP TRIGGER IF EXISTS kill_once ON {table}",
        "DROP FUNCTION IF EXISTS kill_once()",
        "DROP SEQUENCE IF EXISTS kill_once",
    ]
    return installed(app, create, drop)


@pytest.mark.skipif(not database_is_postgres(), reason="terminates a PostgreSQL connection")
def test_a_connection_lost_right_after_the_upload_sends_the_file_once(
    client, app, user, add_key, vt_emulator, start_worker
):
    # The write of the analysis VirusTotal started loses its connection. VirusTotal knows a new
    # file only once its analysis ends (3 s here), so a scan that lost the analysis id with it
    # would look the file up, not find it, and send it again.
    key = add_key(user)
    start_worker()

    with connection_killed_once(app, "scan_flights", "NEW.vt_analysis_id IS NOT NULL"):
        scan_id = uploaded(client, user, b"new to VirusTotal while our database hiccups\n")["scan"]["scan_id"]
        status = wait_for_scan(client, user, scan_id)
        with app.app_context():
            from scanner.extensions import db

            # The connection was killed at that write, and the write was made again after it.
            assert db.session.scalar(text("SELECT last_value FROM kill_once")) >= 2
            db.session.remove()

    assert status["status"] == "completed", status
    counts = vt_emulator.counts(key["key_value"])
    assert counts[UPLOAD] == 1, counts


def test_an_unexpected_error_is_an_attempt_and_the_scan_fails_after_the_limit(
    app, client, user, add_key, vt_emulator, start_worker
):
    content = b"known to VirusTotal, but our database will not take its verdicts\n"
    vt_emulator.add_file(content, verdict="malicious")
    key = add_key(user)
    start_worker(SCAN_MAX_ATTEMPTS="3")

    with inserts_refused(app, "engine_results"):
        status = wait_for_scan(client, user, uploaded(client, user, content)["scan"]["scan_id"])
        asked = vt_emulator.counts(key["key_value"])
        time.sleep(1.5)  # many retry periods: a looping scan would ask again meanwhile
        asked_later = vt_emulator.counts(key["key_value"])

    assert status["status"] == "failed", status
    assert status["error"].startswith("An internal error kept stopping it (3 attempts)"), status["error"]
    # Every attempt got as far as the lookup, and nothing was asked once the scan had failed.
    assert asked[LOOKUP] == 3
    assert asked_later == asked


def test_an_error_before_the_steps_first_commit_is_an_attempt_too(
    app, client, user, add_key, vt_emulator, start_worker
):
    # The step fails before its first commit and before any VirusTotal call, on the file's flight:
    # its rollback undoes the claim too, which is put back as it was (scanner/work.py), so the
    # attempt still counts.
    key = add_key(user)
    start_worker(SCAN_MAX_ATTEMPTS="3")

    with inserts_refused(app, "scan_flights"):
        status = wait_for_scan(client, user, uploaded(client, user, b"no flight will take off\n")["scan"]["scan_id"])

    assert status["status"] == "failed", status
    assert status["error"].startswith("An internal error kept stopping it (3 attempts)"), status["error"]
    assert vt_emulator.counts(key["key_value"]).get(LOOKUP, 0) == 0


def test_a_claim_committed_whose_answer_was_lost_is_still_the_steps(app, client, user, add_key, vt_emulator):
    # The step's first commit (its claim, before the lookup) is made, but the connection dies
    # before the database's answer arrives. The claim the step puts back after its rollback is the
    # one committed: the step settles its outcome (a retry soon) instead of taking the scan for
    # another worker's and leaving it to the sweep, a lease and a grace period later.
    from scanner.extensions import db
    from scanner.scans import pipeline
    from scanner.scans.models import Scan

    content = b"known to VirusTotal; the answer to our commit is not\n"
    vt_emulator.add_file(content)
    key = add_key(user)
    scan_id = uuid.UUID(uploaded(client, user, content)["scan"]["scan_id"])
    with app.app_context():
        dialect = db.engine.dialect
        made = dialect.do_commit

        def answer_lost(dbapi_connection) -> None:
            made(dbapi_connection)
            dialect.do_commit = made  # once
            raise dialect.loaded_dbapi.OperationalError("the connection was lost before the commit's answer")

        dialect.do_commit = answer_lost
        try:
            delay = pipeline.advance(scan_id)
        finally:
            dialect.do_commit = made
        scan = db.session.get(Scan, scan_id, populate_existing=True)
        state = (scan.status, scan.attempts, scan.error or "")
        db.session.remove()

    assert delay is not None and delay <= app.config["SCAN_RETRY_BASE_SECONDS"]
    # Counted once, and retried soon for the reason in the log.
    assert state[:2] == ("scanning", 1) and state[2].startswith("OperationalError, see the log"), state
    assert vt_emulator.counts(key["key_value"]).get(LOOKUP, 0) == 0
    with app.app_context():
        db.session.get(Scan, scan_id).next_check_at = None  # the retry's pause, over
        db.session.commit()
        assert pipeline.advance(scan_id) is None
        db.session.remove()
    assert client.get(f"/api/scan/{scan_id}/status", headers=user.headers).json["status"] == "completed"
    assert vt_emulator.counts(key["key_value"])[LOOKUP] == 1


def test_a_scan_whose_steps_kept_dying_fails_instead_of_looping(app, client, user, add_key, vt_emulator):
    from scanner.extensions import db
    from scanner.scans import pipeline
    from scanner.scans.models import Scan

    key = add_key(user)
    scan_id = uuid.UUID(uploaded(client, user, b"this file kills every worker that reads it\n")["scan"]["scan_id"])
    before = vt_emulator.total(key["key_value"])
    with app.app_context():
        # As the row stands after SCAN_MAX_ATTEMPTS steps that each killed their worker: every
        # claim counted an attempt and no step lived to record an outcome.
        db.session.get(Scan, scan_id).attempts = app.config["SCAN_MAX_ATTEMPTS"]
        db.session.commit()

        assert pipeline.advance(scan_id) is None
        db.session.remove()

    status = client.get(f"/api/scan/{scan_id}/status", headers=user.headers).json
    assert status["status"] == "failed"
    assert (
        status["error"]
        == f"Stopped {app.config['SCAN_MAX_ATTEMPTS']} times before a step could finish; see the worker log"
    )
    assert vt_emulator.total(key["key_value"]) == before


def test_a_step_slower_than_its_lease_keeps_the_scan_and_uploads_once(client, user, add_key, vt_emulator, start_worker):
    key = add_key(user)
    # Every answer takes 2 s, twice the lease: only renewing it keeps the sweep, which runs
    # every 0.3 s here, from handing the scan to the other worker process meanwhile.
    vt_emulator.configure(queued_seconds=0, progress_seconds=0)
    vt_emulator.set_faults(latency_ms=2000)
    start_worker(
        beat=True,
        SCAN_LEASE_SECONDS="1",
        SCAN_STUCK_GRACE_SECONDS="0.5",
        SCAN_SWEEP_SECONDS="0.3",
        VT_READ_TIMEOUT="10",
    )

    status = wait_for_scan(
        client, user, uploaded(client, user, b"new to VirusTotal, on a slow line\n")["scan"]["scan_id"]
    )

    assert status["status"] == "completed", status
    counts = vt_emulator.counts(key["key_value"])
    assert (counts[LOOKUP], counts[UPLOAD]) == (1, 1)


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="a minute-long proof: the services pass runs it")
def test_a_killed_workers_scans_finish_within_a_minute_with_default_settings(
    app, client, user, add_key, vt_emulator, start_worker
):
    from scanner.extensions import db
    from scanner.scans.models import Scan

    key = add_key(user)
    vt_emulator.configure(queued_seconds=0.5, progress_seconds=0.5)
    vt_emulator.set_faults(latency_ms=1000)  # steps long enough to be caught in the middle
    first = start_worker()
    scan_ids = [
        uploaded(client, user, f"in flight when the worker dies {i}\n".encode())["scan"]["scan_id"] for i in range(6)
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app.app_context():
            stages = list(db.session.scalars(text("SELECT stage FROM scans")))
            db.session.remove()
        if sum(stage in ("uploading", "waiting_for_analysis") for stage in stages) >= 2:
            break
        time.sleep(0.1)

    first.kill()
    killed_at = time.monotonic()
    vt_emulator.set_faults()
    start_worker(beat=True)  # the default lease, grace and sweep period
    results = [
        wait_for_scan(client, user, scan_id, limit=max(60 - (time.monotonic() - killed_at), 0)) for scan_id in scan_ids
    ]

    assert {r["status"] for r in results} == {"completed"}, results
    with app.app_context():
        assert db.session.query(Scan).filter(Scan.status.notin_(TERMINAL)).count() == 0
        db.session.remove()
    # At most the uploads in flight when the worker died are made again.
    assert vt_emulator.counts(key["key_value"])[UPLOAD] <= 6 + 2

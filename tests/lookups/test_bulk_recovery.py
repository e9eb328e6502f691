"""Bulk jobs as work rows (scanner/work.py): a message delivered more than once drives one chain
of tasks, and a job whose slices keep dying fails with a reason instead of looping."""

from __future__ import annotations

import io
import time
import uuid

from .helpers import wait_for_job

SCALED = {"VT_QUOTA_MINUTE_SECONDS": "1", "VT_QUOTA_MARGIN_SECONDS": "0.2"}


def submit(client, user, lines: list[str]) -> str:
    data = {"file": (io.BytesIO("\n".join(lines).encode()), "iocs.txt")}
    response = client.post("/api/bulk", data=data, headers=user.headers, content_type="multipart/form-data")
    assert response.status_code == 202, response.json
    return response.json["job_id"]


def test_a_waiting_jobs_message_delivered_again_starts_no_second_chain(app, client, user, add_key, vt_emulator):
    from scanner.extensions import db
    from scanner.lookups import bulk

    key = add_key(user, per_minute=2)
    job_id = uuid.UUID(submit(client, user, [f"twice{i}.example.org" for i in range(5)]))

    with app.app_context():
        first = bulk.run(job_id)  # what the job's message does: a slice, then it waits for quota
        asked = vt_emulator.total(key["key_value"])
        again = bulk.run(job_id)  # the same message, redelivered by the broker meanwhile
        db.session.remove()

    assert first is not None and first > 0  # the chain goes on once the key's minute is over
    assert again is None  # no continuation: the redelivery is not a second chain
    assert vt_emulator.total(key["key_value"]) == asked


def test_a_job_whose_message_is_delivered_again_and_again_asks_once_per_indicator(
    app, client, user, add_key, vt_emulator, monkeypatch, start_worker
):
    vt_emulator.configure(minute_seconds=1)
    for name, value in SCALED.items():
        monkeypatch.setitem(app.config, name, float(value))
    key = add_key(user, per_minute=3)
    lines = [f"redelivered{i}.example.org" for i in range(9)]
    job_id = submit(client, user, lines)
    start_worker(**SCALED)
    run_bulk = app.extensions["celery"].tasks["scanner.lookups.tasks.run_bulk"]

    for _ in range(3):  # as a broker does after a visibility timeout or a lost acknowledgement
        time.sleep(0.5)
        run_bulk.delay(job_id)
    job = wait_for_job(client, user, job_id)

    assert job["status"] == "completed" and job["completed_iocs"] == len(lines), job
    assert vt_emulator.counts(key["key_value"])["GET /domains/{id}"] == len(lines)
    assert 429 not in vt_emulator.statuses(key["key_value"])


def test_a_job_whose_slices_kept_dying_fails_with_its_items(app, client, user, add_key, vt_emulator):
    from scanner.extensions import db
    from scanner.lookups import bulk
    from scanner.lookups.models import BulkJob

    key = add_key(user)
    job_id = submit(client, user, ["poison.example.org", "8.8.4.4"])
    before = vt_emulator.total(key["key_value"])
    with app.app_context():
        # As the row stands after LOOKUP_MAX_ATTEMPTS slices that each killed their worker.
        db.session.get(BulkJob, uuid.UUID(job_id)).attempts = app.config["LOOKUP_MAX_ATTEMPTS"]
        db.session.commit()

        assert bulk.run(uuid.UUID(job_id)) is None
        db.session.remove()

    job = client.get(f"/api/bulk/{job_id}", headers=user.headers).json
    assert job["status"] == "failed" and job["error"].startswith("Stopped"), job
    assert (job["failed_iocs"], job["pending_iocs"]) == (2, 0)
    assert all(row["error"].startswith("The job failed: Stopped") for row in job["results"]), job["results"]
    assert vt_emulator.total(key["key_value"]) == before

"""The work-row engine's promise to the broker: no countdown outlives its visibility timeout."""

from __future__ import annotations

import uuid

from tests.lookups.helpers import check, wait_for_lookup


def queued_messages(app) -> int:
    celery = app.extensions["celery"]
    with celery.connection_for_write() as conn:
        return conn.default_channel.queue_declare(celery.conf.task_default_queue).message_count


def test_the_visibility_timeout_is_set_and_above_every_countdown(app):
    celery = app.extensions["celery"].conf
    if str(celery.broker_url).startswith("redis"):  # the SQL transport has none: it never redelivers
        assert celery.broker_transport_options["visibility_timeout"] == app.config["BROKER_VISIBILITY_TIMEOUT"]
    assert celery.result_backend_transport_options["visibility_timeout"] == app.config["BROKER_VISIBILITY_TIMEOUT"]
    assert app.config["WORK_MAX_COUNTDOWN_SECONDS"] < app.config["BROKER_VISIBILITY_TIMEOUT"]


def test_a_wait_too_long_for_a_countdown_is_not_queued(app):
    from scanner import work

    run_scan = app.extensions["celery"].tasks["scanner.scans.tasks.run_scan"]
    app.extensions["celery"].control.purge()
    with app.app_context():
        work.enqueue(run_scan, uuid.uuid4(), app.config["WORK_MAX_COUNTDOWN_SECONDS"] + 1)
        assert queued_messages(app) == 0
        work.enqueue(run_scan, uuid.uuid4(), 1.0)
        assert queued_messages(app) == 1
    app.extensions["celery"].control.purge()


def test_a_lookup_whose_wait_is_left_to_the_sweep_is_finished_by_it(
    app, client, user, add_key, vt_emulator, start_worker, monkeypatch
):
    # One request a second: the key's check at creation spends it, so the lookup waits about a
    # second for quota, which here is longer than any countdown may be.
    scale = {"VT_QUOTA_MINUTE_SECONDS": "1", "VT_QUOTA_MARGIN_SECONDS": "0.2", "WORK_MAX_COUNTDOWN_SECONDS": "0.1"}
    for name, value in scale.items():
        monkeypatch.setitem(app.config, name, float(value))
    vt_emulator.configure(minute_seconds=1)
    key = add_key(user, per_minute=1)
    app.extensions["celery"].control.purge()

    response = check(client, user, "patience.example.com")
    assert response.status_code == 202 and response.json["status"] == "pending", response.json
    assert queued_messages(app) == 0
    start_worker(beat=True, LOOKUP_SWEEP_SECONDS="0.3", LOOKUP_STUCK_GRACE_SECONDS="0.2", **scale)
    done = wait_for_lookup(client, user, response.json["lookup_id"])

    assert done["status"] == "completed" and done["verdict"] == "clean"
    assert 429 not in vt_emulator.statuses(key["key_value"])

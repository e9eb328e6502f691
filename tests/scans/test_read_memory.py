"""A web process answers a scan's status from memory while it hears the workers' events (README,
"Performance"): a change a worker announces shows at once, a deleted scan is gone at once, the
memory serves its owner only, and a change no event announced shows within READ_MEMORY_SECONDS;
when the events cannot be heard, every read is a query again.

The events travel through a Redis server of the test's own, so that one test can kill it."""

from __future__ import annotations

import time

import requests
from sqlalchemy import update

from scanner import events
from scanner.files.models import File
from scanner.scans.models import Scan
from tests.assertions import assert_error
from tests.fixtures.redis_server import LONG_MEMORY
from tests.lookups.helpers import first_event, named, stream

from .results.factory import make_scan


def _status(client, user, scan_id) -> str:
    r = client.get(f"/api/scan/{scan_id}/status", headers=user.headers)
    assert r.status_code == 200, r.json
    return r.json["status"]


def _finish_silently(db, scan_id) -> None:
    """What a worker's step commits, without the event it then publishes."""
    db.session.execute(update(Scan).where(Scan.id == scan_id).values(status="completed", stage="done"))
    db.session.commit()


def _scanning(db, owner):
    scan = make_scan(owner, status="scanning", scan_date=None)
    db.session.commit()
    return scan.id, scan.file_id


def _until(read, expected: str, seconds: float) -> float:
    """Seconds until `read()` returns `expected`; fails after `seconds`."""
    began = time.monotonic()
    while (found := read()) != expected:
        assert time.monotonic() - began < seconds, f"still {found!r} after {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - began


def test_a_change_a_worker_announces_shows_at_once(client, app, db, user, heard):
    scan_id, _ = _scanning(db, user)
    assert _status(client, user, scan_id) == "scanning"
    _finish_silently(db, scan_id)
    assert _status(client, user, scan_id) == "scanning"  # remembered: no event said it changed

    with app.app_context():
        events.publish("scan", scan_id)

    _until(lambda: _status(client, user, scan_id), "completed", 5)


def test_a_change_no_event_announced_shows_within_the_delay(client, app, db, user, heard, monkeypatch):
    monkeypatch.setitem(app.config, "READ_MEMORY_SECONDS", 1.0)
    scan_id, _ = _scanning(db, user)
    assert _status(client, user, scan_id) == "scanning"
    _finish_silently(db, scan_id)
    assert _status(client, user, scan_id) == "scanning"  # remembered

    _until(lambda: _status(client, user, scan_id), "completed", 1.0 + 0.5)


def _deletable(db, file_id) -> None:
    file = db.session.get(File, file_id)
    file.blob_key = file.sha256  # a key the blob store accepts (it holds no bytes: nothing to remove)
    db.session.commit()


def test_a_deleted_files_scan_is_gone_at_once(client, db, user, heard):
    scan_id, file_id = _scanning(db, user)
    _deletable(db, file_id)
    assert _status(client, user, scan_id) == "scanning"
    _finish_silently(db, scan_id)
    assert _status(client, user, scan_id) == "scanning"  # remembered

    assert client.delete(f"/api/files/{file_id}", headers=user.headers).status_code == 200

    assert_error(client.get(f"/api/scan/{scan_id}/status", headers=user.headers), 404, "NOT_FOUND")


def test_a_remembered_status_is_still_another_users_404_and_an_admins_read(client, db, make_user, make_admin, heard):
    owner, intruder, admin = make_user(), make_user(), make_admin()
    scan_id, _ = _scanning(db, owner)
    assert _status(client, owner, scan_id) == "scanning"

    assert_error(client.get(f"/api/scan/{scan_id}/status", headers=intruder.headers), 404, "NOT_FOUND")
    assert _status(client, admin, scan_id) == "scanning"


def test_losing_the_events_drops_the_memory(client, db, user, heard):
    scan_id, _ = _scanning(db, user)
    assert _status(client, user, scan_id) == "scanning"
    _finish_silently(db, scan_id)

    assert _status(client, user, scan_id) == "scanning"  # remembered

    heard.kill()  # no event can come now: what was remembered may be stale, and is dropped

    _until(lambda: _status(client, user, scan_id), "completed", 5)


def test_without_events_every_read_is_a_query(client, app, db, user, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", None)
    monkeypatch.setitem(app.config, "READ_MEMORY_SECONDS", LONG_MEMORY)
    scan_id, _ = _scanning(db, user)
    assert _status(client, user, scan_id) == "scanning"
    _finish_silently(db, scan_id)

    assert _status(client, user, scan_id) == "completed"


def test_a_history_change_made_in_another_web_process_shows_at_once(client, app, db, user, start_web, monkeypatch):
    """On the run's own Redis when it has one (the services pass): there the first reads are
    remembered and the other process's event drops them; embedded, each read is made afresh."""
    monkeypatch.setitem(app.config, "READ_MEMORY_SECONDS", LONG_MEMORY)
    other = start_web()
    scan_id, file_id = _scanning(db, user)
    _deletable(db, file_id)

    def listed() -> list[str]:
        r = client.get("/api/scan/results", headers=user.headers)
        assert r.status_code == 200, r.json
        return [row["id"] for row in r.json["scans"]]

    if app.config.get("REDIS_URL"):
        with app.app_context():
            _until(events.hearing, True, 10)
    assert listed() == [str(scan_id)]
    gone = requests.delete(f"{other.url}/api/files/{file_id}", headers=user.headers, timeout=30)
    assert gone.status_code == 200, gone.text

    _until(lambda: len(listed()), 0, 5)


def test_a_stream_of_a_scan_deleted_with_its_file_ends_with_not_found(db, user, start_web):
    server = start_web()
    scan_id, file_id = _scanning(db, user)  # no worker runs it: the stream stays open until the deletion
    _deletable(db, file_id)
    opened = stream(server, f"/api/stream/scans/{scan_id}", user)
    try:
        assert first_event(opened).event == "status"
        gone = requests.delete(f"{server.url}/api/files/{file_id}", headers=user.headers, timeout=30)
        assert gone.status_code == 200, gone.text
        events_seen = named(opened.until("not_found"))
    finally:
        opened.close()

    assert [item.event for item in events_seen] == ["not_found"]
    assert events_seen[0].data["error"]["code"] == "NOT_FOUND"

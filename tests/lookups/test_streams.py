"""Server-Sent Events read with a real HTTP client from gunicorn (gevent, as deployed), while a
real Celery worker changes what the stream follows.

Embedded mode (no TEST_REDIS_URL): a stream re-reads the database every STREAM_POLL_SECONDS.
With TEST_REDIS_URL: the follow tests set STREAM_RECHECK_SECONDS and STREAM_HEARTBEAT_SECONDS far
beyond the client's read timeout, so a stream that reaches `complete` was woken by the worker's
Redis pub/sub event and not by a timer.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta

import requests

from .helpers import Event, EventStream, first_event, named, open_stream, stream, submit_bulk

# Fast polling for embedded mode; in Redis mode only events (or the client's read timeout) move a stream.
FOLLOW = {
    "STREAM_POLL_SECONDS": "0.1",
    "STREAM_RECHECK_SECONDS": "600",
    "STREAM_HEARTBEAT_SECONDS": "600",
    "STREAM_MAX_SECONDS": "900",
}


def upload_file(server, user, content: bytes) -> dict:
    files = {"file": ("sample.bin", content, "application/octet-stream")}
    response = requests.post(f"{server.url}/api/files/upload", files=files, headers=user.headers, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def assert_each_event_is_a_change(events: list[Event], name: str) -> None:
    changes = [item.data for item in events if item.event == name]
    assert all(before != after for before, after in zip(changes, changes[1:], strict=False)), changes


def test_scan_stream_reports_each_state_change_and_ends_complete(user, add_key, vt_emulator, start_web, start_worker):
    vt_emulator.configure(queued_seconds=0.3, progress_seconds=0.3)
    add_key(user)
    server = start_web(**FOLLOW)
    scan_id = upload_file(server, user, os.urandom(512))["scan"]["scan_id"]

    opened = stream(server, f"/api/stream/scans/{scan_id}", user)
    try:
        first = first_event(opened)
        # No worker yet, so the stream has shown the scan before anything finished it.
        assert first.event == "status" and first.data["scan_id"] == scan_id
        assert first.data["status"] == "scanning"
        start_worker()
        rest = opened.until("complete")
    finally:
        opened.close()

    events = [first, *named(rest)]
    assert events[-1].event == "complete", (events, server.logs())
    done = events[-1].data
    assert done["status"] == "completed" and done["scan_id"] == scan_id
    assert done["detection_ratio"] and done["verdict"] in ("clean", "suspicious", "malicious")
    assert datetime.fromisoformat(done["scan_date"]).utcoffset() == timedelta(0)
    assert "T" in done["scan_date"]  # the API's ISO 8601, not Python's str() with a space
    statuses = [item.data for item in events if item.event == "status"]
    assert statuses[-1] == done  # the final state was sent as a change before `complete`
    assert len(statuses) >= 2
    assert_each_event_is_a_change(events, "status")


def test_lookup_stream_for_an_unknown_url_ends_complete_when_a_worker_finishes(
    user, add_key, vt_emulator, start_web, start_worker
):
    vt_emulator.configure(queued_seconds=0.3, progress_seconds=0.3)
    add_key(user)
    server = start_web(**FOLLOW)
    ioc = "https://stream-phish.example.com/login"

    opened = stream(server, f"/api/stream_ioc?ioc={requests.utils.quote(ioc, safe='')}", user)
    try:
        started = first_event(opened)
        assert started.event == "lookup"
        assert started.data["ioc"] == ioc and started.data["ioc_type"] == "url"
        assert started.data["status"] == "pending"
        pending = first_event(opened)
        assert pending.event == "status" and pending.data["status"] == "pending"
        assert pending.data["summary"]["verdict"] == "unknown"
        start_worker()
        rest = opened.until("complete")
    finally:
        opened.close()

    events = [started, pending, *named(rest)]
    done = events[-1]
    assert done.event == "complete"
    assert done.data["lookup_id"] == started.data["lookup_id"]
    assert done.data["status"] == "completed" and done.data["source"] == "virustotal"
    assert done.data["summary"]["verdict"] == "malicious"
    assert_each_event_is_a_change(events, "status")
    answer = requests.get(f"{server.url}/api/lookup/{done.data['lookup_id']}", headers=user.headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "completed"


def test_bulk_stream_reports_progress_and_ends_complete(user, add_key, vt_emulator, start_web, start_worker):
    add_key(user)
    server = start_web(**FOLLOW)
    job = submit_bulk(server, user, "8.8.8.8\nstream-bulk.example.com\n1.1.1.1\n")
    assert job["total_iocs"] == 3

    opened = stream(server, f"/api/stream/bulk/{job['job_id']}", user)
    try:
        first = first_event(opened)
        assert first.event == "progress" and first.data["id"] == job["job_id"]
        assert first.data["status"] == "pending" and first.data["pending_iocs"] == 3
        start_worker()
        rest = opened.until("complete")
    finally:
        opened.close()

    events = [first, *named(rest)]
    done = events[-1]
    assert done.event == "complete"
    assert done.data["status"] == "completed"
    assert done.data["completed_iocs"] == 3 and done.data["processed_iocs"] == 3 and done.data["pending_iocs"] == 0
    assert [item.data for item in events if item.event == "progress"][-1] == done.data
    assert_each_event_is_a_change(events, "progress")


def test_a_quiet_stream_sends_heartbeats(user, add_key, start_web):
    add_key(user)
    server = start_web(STREAM_HEARTBEAT_SECONDS="0.2", STREAM_MAX_SECONDS="600")
    job = submit_bulk(server, user, "heartbeat.example.com\n")  # no worker: nothing will change

    opened = stream(server, f"/api/stream/bulk/{job['job_id']}", user, timeout=30)
    try:
        seen = []
        for item in opened:
            seen.append(item)
            if sum(1 for s in seen if s.comment == "heartbeat") == 3:
                break
    finally:
        opened.close()

    assert seen[0].event == "progress" and seen[0].data["status"] == "pending"
    # After the first event nothing changed, so everything sent was a heartbeat.
    assert [(s.event, s.comment) for s in seen[1:]] == [(None, "heartbeat")] * 3


def test_a_stream_ends_with_a_timeout_event_after_its_maximum_duration(user, add_key, start_web):
    add_key(user)
    server = start_web(STREAM_HEARTBEAT_SECONDS="600", STREAM_MAX_SECONDS="1")
    job = submit_bulk(server, user, "timeout.example.com\n")

    opened = stream(server, f"/api/stream/bulk/{job['job_id']}", user, timeout=30)
    try:
        events = named(opened.until("timeout"))
        after = list(opened)  # the server closes the stream after its last event
    finally:
        opened.close()

    assert [item.event for item in events] == ["progress", "timeout"]
    assert "reconnect" in events[-1].data["message"]
    assert after == []


def test_one_stream_more_than_the_cap_is_refused_with_429_and_retry_after(user, make_user, add_key, start_web):
    add_key(user)
    # Short heartbeats let the server notice a closed client, and free its slot, quickly.
    server = start_web(STREAM_MAX_PER_USER="2", STREAM_HEARTBEAT_SECONDS="0.2")
    path = f"/api/stream/bulk/{submit_bulk(server, user, 'cap.example.com')['job_id']}"
    url = f"{server.url}{path}"
    held = [stream(server, path, user) for _ in range(2)]
    try:
        for opened in held:
            assert first_event(opened).event == "progress"

        refused = open_stream(url, user.access_token)

        assert isinstance(refused, requests.Response) and refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "RATE_LIMIT_EXCEEDED"
        assert error["details"]["max_streams"] == 2
        # Flask-Limiter keeps the later of our Retry-After and its own window's reset on every response.
        assert error["details"]["retry_after"] >= 1
        assert int(refused.headers["Retry-After"]) >= error["details"]["retry_after"]

        # The cap is per user: someone else still gets a stream of their own.
        other = make_user()
        add_key(other)
        theirs = stream(server, f"/api/stream/bulk/{submit_bulk(server, other, 'other.example.com')['job_id']}", other)
        assert first_event(theirs).event == "progress"
        theirs.close()

        # Closing one stream gives its slot back.
        held.pop().close()
        deadline = time.monotonic() + 30
        while True:
            again = open_stream(url, user.access_token)
            if isinstance(again, EventStream):
                break
            assert again.status_code == 429, again.text
            assert time.monotonic() < deadline, "a closed stream never gave its slot back"
            time.sleep(0.2)
        held.append(again)
        assert first_event(again).event == "progress"
    finally:
        for opened in held:
            opened.close()


def test_streams_need_a_token_and_show_only_the_callers_own_objects(user, make_user, add_key, start_web):
    add_key(user)
    # Short heartbeats let the server notice the closed streams and stop promptly at the end.
    server = start_web(STREAM_HEARTBEAT_SECONDS="0.2")
    scan_id = upload_file(server, user, os.urandom(256))["scan"]["scan_id"]
    job_id = submit_bulk(server, user, "private.example.com\n")["job_id"]
    paths = [f"/api/stream/scans/{scan_id}", f"/api/stream/bulk/{job_id}", "/api/stream_ioc?ioc=example.com"]

    for path in paths:
        response = requests.get(f"{server.url}{path}", timeout=30)
        assert response.status_code == 401, path
        error = response.json()["error"]
        assert error["code"] == "TOKEN_MISSING" and error["type"] == "AuthenticationError", response.text

    stranger = make_user()
    add_key(stranger)
    for path in paths[:2] + [f"/api/stream/scans/{uuid.uuid4()}", f"/api/stream/bulk/{uuid.uuid4()}"]:
        response = open_stream(f"{server.url}{path}", stranger.access_token)
        assert isinstance(response, requests.Response), path
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"

    # The owner sees both.
    for path in paths[:2]:
        opened = stream(server, path, user)
        assert first_event(opened).event in ("status", "progress")
        opened.close()

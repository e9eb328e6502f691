"""What keeps open streams from taking the service down: caps per process and in total, the token
re-checked while a stream is open, and nothing left behind when clients go away. A real gunicorn
(gevent workers, as deployed) serves the streams; a bulk job with no worker keeps each one open."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis
import requests

from tests.lookups.helpers import EventStream, first_event, named, open_stream, stream, submit_bulk

PROBE_CONFIG = str(Path(__file__).with_name("gunicorn_probe.py"))


def open_until_admitted(url: str, token: str, limit: float = 30.0) -> EventStream:
    """Retry a refused stream until a place frees; the bound only stops a hung test."""
    deadline = time.monotonic() + limit
    while True:
        opened = open_stream(url, token)
        if isinstance(opened, EventStream):
            return opened
        assert opened.status_code == 503, opened.text
        assert time.monotonic() < deadline, "no place ever freed"
        time.sleep(0.2)


def assert_service_busy(refused: requests.Response, cap: int) -> None:
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "SERVICE_BUSY" and error["type"] == "ServiceUnavailableError"
    assert error["details"]["max_streams"] == cap
    assert error["details"]["retry_after"] >= 1
    assert int(refused.headers["Retry-After"]) >= error["details"]["retry_after"]


def test_over_the_process_cap_a_stream_is_refused_with_503_and_retry_after(user, make_user, add_key, start_web):
    add_key(user)
    server = start_web(STREAM_MAX_PER_PROCESS="2", STREAM_HEARTBEAT_SECONDS="0.2")
    url = f"{server.url}/api/stream/bulk/{submit_bulk(server, user, 'busy.example.com')['job_id']}"
    held = [stream(server, url.removeprefix(server.url), user) for _ in range(2)]
    try:
        for opened in held:
            assert first_event(opened).event == "progress"

        # The user is under their own cap (3): it is the process that is full.
        assert_service_busy(open_stream(url, user.access_token), 2)
        other = make_user()
        add_key(other)
        theirs = f"{server.url}/api/stream/bulk/{submit_bulk(server, other, 'busy2.example.com')['job_id']}"
        assert_service_busy(open_stream(theirs, other.access_token), 2)

        held.pop().close()
        held.append(open_until_admitted(theirs, other.access_token))
        assert first_event(held[-1]).event == "progress"
    finally:
        for opened in held:
            opened.close()


def test_the_total_cap_spans_processes_and_a_crashed_process_frees_its_places(user, add_key, start_web, redis_client):
    add_key(user)
    limits = {"STREAM_MAX_TOTAL": "2", "STREAM_HEARTBEAT_SECONDS": "0.3"}
    first, second = start_web(**limits), start_web(**limits)
    path = f"/api/stream/bulk/{submit_bulk(first, user, 'total.example.com')['job_id']}"
    held = [stream(first, path, user), stream(second, path, user)]
    try:
        for opened in held:
            assert first_event(opened).event == "progress"
        assert_service_busy(open_stream(f"{first.url}{path}", user.access_token), 2)

        # A process that dies cannot give its places back: its lease runs out instead.
        second.kill()
        held.pop().close()
        assert_service_busy(open_stream(f"{first.url}{path}", user.access_token), 2)
        held.append(open_until_admitted(f"{first.url}{path}", user.access_token))
        assert first_event(held[-1]).event == "progress"
    finally:
        for opened in held:
            opened.close()


def test_a_stream_closes_when_its_session_is_logged_out(user, add_key, start_web):
    add_key(user)
    server = start_web(STREAM_HEARTBEAT_SECONDS="0.2")
    opened = stream(server, f"/api/stream/bulk/{submit_bulk(server, user, 'logout.example.com')['job_id']}", user)
    try:
        assert first_event(opened).event == "progress"
        out = requests.post(f"{server.url}/api/auth/logout", headers=user.headers, timeout=30)
        assert out.status_code == 200, out.text
        events = named(opened.until("unauthorized"))
        after = list(opened)
    finally:
        opened.close()

    assert [item.event for item in events] == ["unauthorized"]
    assert events[0].data["error"]["code"] == "TOKEN_REVOKED"
    assert after == []  # the server closed the stream


def test_a_stream_closes_when_its_token_expires(user, add_key, start_web):
    add_key(user)
    # Heartbeats far apart: the stream ends at the token's expiry, not at its next heartbeat.
    server = start_web(JWT_ACCESS_SECONDS="2", STREAM_HEARTBEAT_SECONDS="600")
    signed_in = requests.post(
        f"{server.url}/api/auth/login", json={"username": user.username, "password": user.password}, timeout=30
    )
    assert signed_in.status_code == 200, signed_in.text
    user.access_token = signed_in.json()["access_token"]
    user.headers = {"Authorization": f"Bearer {user.access_token}"}
    job_id = submit_bulk(server, user, "expiry.example.com")["job_id"]

    opened = stream(server, f"/api/stream/bulk/{job_id}", user)
    try:
        events = named(opened.until("unauthorized"))
        after = list(opened)
    finally:
        opened.close()

    assert [item.event for item in events] == ["progress", "unauthorized"]
    assert events[-1].data["error"]["code"] == "TOKEN_EXPIRED"
    assert after == []


def read_probe(directory: Path) -> dict:
    (probe,) = directory.glob("*.json")
    return json.loads(probe.read_text())


def wait_for_probe(directory: Path, until, limit: float = 60.0) -> dict:
    deadline = time.monotonic() + limit
    while True:
        if any(directory.glob("*.json")):
            counts = read_probe(directory)
            if until(counts):
                return counts
        assert time.monotonic() < deadline, f"the worker never got there: {read_probe(directory)}"
        time.sleep(0.1)


def pubsub_clients(redis_client) -> int:
    """Redis connections of our database that are subscribed to anything."""
    db = redis_client.connection_pool.connection_kwargs.get("db", 0)
    return sum(1 for c in redis_client.client_list(_type="pubsub") if int(c["db"]) == db)


def test_a_hundred_clients_that_go_away_leave_no_greenlet_thread_or_subscription(
    user, add_key, start_web, tmp_path, test_env
):
    probes = tmp_path / "probe"
    probes.mkdir()
    add_key(user)
    server = start_web(
        config=PROBE_CONFIG, STREAM_PROBE_DIR=str(probes), STREAM_MAX_PER_USER="100", STREAM_HEARTBEAT_SECONDS="3"
    )
    job_id = submit_bulk(server, user, "gone.example.com")["job_id"]
    redis_client = redis.Redis.from_url(test_env["REDIS_URL"]) if test_env.get("REDIS_URL") else None
    if redis_client is not None:
        subscribed_before = pubsub_clients(redis_client)
    # The worker's one event subscription (with Redis) starts with its first stream and stays.
    first = stream(server, f"/api/stream/bulk/{job_id}", user)
    assert first_event(first).event == "progress"
    wait_for_probe(probes, lambda counts: counts["streams_open"] == 1)  # a report from after it opened
    first.close()
    idle = wait_for_probe(probes, lambda counts: counts["streams_open"] == 0 and counts["stream_waiters"] == 0)

    opened = [stream(server, f"/api/stream/bulk/{job_id}", user) for _ in range(100)]
    for each in opened:
        assert first_event(each).event == "progress"
    # A report written while the last stream held its place but had not yet subscribed shows 99
    # waiters: wait for one from after every stream subscribed.
    waiting = 100 if redis_client is not None else 0
    busy = wait_for_probe(probes, lambda counts: counts["streams_open"] == 100 and counts["stream_waiters"] == waiting)
    assert busy["greenlets"] >= 100  # the probe sees each stream's greenlet
    if redis_client is not None:
        # One subscription for the whole worker, not one per stream.
        assert pubsub_clients(redis_client) <= subscribed_before + 1
    for each in opened:
        each.close()

    wait_for_probe(probes, lambda counts: counts["streams_open"] == 0 and counts["stream_waiters"] == 0)
    after = wait_for_probe(probes, lambda counts: counts["greenlets"] <= idle["greenlets"])
    assert after["os_threads"] <= idle["os_threads"]
    if redis_client is not None:
        assert pubsub_clients(redis_client) <= subscribed_before + 1
        redis_client.close()

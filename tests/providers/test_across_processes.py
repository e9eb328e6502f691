"""Metrics and logs of a real gunicorn with two worker processes, as deployed."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.system.test_prometheus import sample


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _me(server, user) -> None:
    # A connection each, so the two processes share the work.
    r = requests.get(f"{server.url}/api/auth/me", headers={**user.headers, "Connection": "close"}, timeout=10)
    assert r.status_code == 200


def _served_by_both(server, user) -> int:
    """Send requests, several at once, until both processes have answered some; how many were
    sent. Which process accepts a connection is the kernel's choice: one that answers fast may
    take every one of a few sent in turn."""
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while sent < 800:
            list(pool.map(lambda _: _me(server, user), range(40)))
            sent += 40
            lines = _json_lines(server.logs_all())
            if len({line["pid"] for line in lines if line.get("route") == "/api/auth/me"}) == 2:
                return sent
    raise AssertionError("both processes should have served some requests")


def test_metrics_count_the_requests_of_every_web_process(start_web, make_admin, user):
    admin = make_admin()
    server = start_web(workers=2, LOG_FORMAT="json", LOG_LEVEL="INFO")
    sent = _served_by_both(server, user)

    metrics = requests.get(f"{server.url}/api/providers/metrics?hours=1", headers=admin.headers, timeout=10).json()
    assert metrics["requests_by_endpoint"]["/api/auth/me"] == sent

    # Prometheus' view adds up both processes' counters too (multiprocess mode).
    scraped = requests.get(f"{server.url}/metrics", timeout=10).text
    route = {"route": "/api/auth/me", "method": "GET", "status": "200"}
    assert sample(scraped, "scanner_http_requests_total", **route) == sent

    # Request ids each process made up for itself: none given twice, by either process.
    lines = [line for line in _json_lines(server.logs_all()) if line.get("route") == "/api/auth/me"]
    ids = [line["request_id"] for line in lines]
    assert len(ids) == sent and len(set(ids)) == sent


def test_batched_counts_of_every_process_arrive_even_when_it_goes_idle(start_web, make_admin, user):
    # As deployed: each process writes its counts every METRICS_FLUSH_SECONDS, not per request.
    admin = make_admin()
    server = start_web(workers=2, LOG_FORMAT="json", LOG_LEVEL="INFO", METRICS_FLUSH_SECONDS="0.5")
    sent = _served_by_both(server, user)

    # One process answers the metrics; the other, idle from now on, still writes what it holds.
    deadline = time.monotonic() + 15
    while True:
        url = f"{server.url}/api/providers/metrics?hours=1"
        counted = (
            requests.get(url, headers=admin.headers, timeout=10).json()["requests_by_endpoint"].get("/api/auth/me")
        )
        if counted == sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counted == sent


def test_every_line_is_json_and_the_access_line_has_the_request_id(start_web, user):
    server = start_web(LOG_FORMAT="json", LOG_LEVEL="INFO")
    r = requests.get(
        f"{server.url}/api/files/00000000-0000-0000-0000-000000000000",
        headers={**user.headers, "X-Request-ID": "trace-me-42"},
        timeout=10,
    )
    assert r.status_code == 404
    assert r.headers["X-Request-ID"] == "trace-me-42"

    lines = _json_lines(server.logs_all())  # fails on any line that is not JSON, gunicorn's own too
    access = [line for line in lines if line["logger"] == "scanner.access" and line.get("request_id") == "trace-me-42"]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "GET"
    assert line["route"] == "/api/files/<file_id>"
    assert line["status"] == 404
    assert line["user_id"] == user.id
    assert line["duration_ms"] >= 0
    assert {"time", "level", "message"} <= set(line)
    assert user.access_token not in server.logs_all()

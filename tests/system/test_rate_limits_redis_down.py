"""The shared budget while the limiter's Redis is away: every web process keeps counting in the
database, so the limit holds as configured, never once per process (nor not at all)."""

from __future__ import annotations

import json

import requests

SHARED = "X-RateLimit-Remaining-Minute"


def test_the_budget_holds_across_processes_while_redis_is_down(user, start_web, private_redis):
    url = private_redis.url(0)
    server = start_web(
        workers=2,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        REDIS_URL=url,
        CACHE_REDIS_URL=url,
        RATELIMIT_STORAGE_URI=url,
        CELERY_BROKER_URL=url,
        RATE_LIMIT_PER_MINUTE="8",
    )
    me = f"{server.url}/api/auth/me"
    # A connection each, so both processes serve some of the requests.
    close = {**user.headers, "Connection": "close"}
    assert requests.get(me, headers=close, timeout=30).headers[SHARED] == "7"  # counted in Redis

    private_redis.kill()

    answers = [requests.get(me, headers=close, timeout=30) for _ in range(12)]
    served = [r for r in answers if r.status_code == 200]
    assert len(served) == 8, [r.status_code for r in answers]  # the outage began a window of its own
    assert [int(r.headers[SHARED]) for r in served] == list(range(7, -1, -1))
    refused = answers[len(served) :]
    for r in refused:
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "RATE_LIMIT_EXCEEDED"
        assert r.headers["Retry-After"] == str(error["details"]["retry_after"])
    lines = [json.loads(line) for line in server.logs_all().splitlines() if line.strip()]
    assert len({line["pid"] for line in lines if line.get("route") == "/api/auth/me"}) == 2

"""The shared budget while the limiter's Redis is away: every web process keeps counting in the
database, so the limit holds as configured, never once per process (nor not at all)."""

from __future__ import annotations

import requests

SHARED = "X-RateLimit-Remaining-Minute"


def test_the_budget_holds_across_processes_while_redis_is_down(user, start_web, private_redis):
    env = {**private_redis.service_env(0), "RATE_LIMIT_PER_MINUTE": "8"}
    # Two web processes of their own (two servers, so each is sure to serve half of the requests).
    servers = [start_web(**env), start_web(**env)]
    assert requests.get(f"{servers[0].url}/api/auth/me", headers=user.headers, timeout=30).headers[SHARED] == "7"

    private_redis.kill()

    answers = [requests.get(f"{servers[i % 2].url}/api/auth/me", headers=user.headers, timeout=30) for i in range(12)]
    served = [r for r in answers if r.status_code == 200]
    assert len(served) == 8, [r.status_code for r in answers]  # the outage began a window of its own
    assert [int(r.headers[SHARED]) for r in served] == list(range(7, -1, -1))
    refused = answers[len(served) :]
    for r in refused:
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "RATE_LIMIT_EXCEEDED"
        assert r.headers["Retry-After"] == str(error["details"]["retry_after"])

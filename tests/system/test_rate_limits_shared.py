"""The shared budget with Redis, counted by each web process a few requests at a time: never once
more than the limit across processes, at most a few requests short of it, and without a Redis
round trip for every request."""

from __future__ import annotations

import redis
import requests

HOURLY = "X-RateLimit-Remaining-Hour"
BUDGET = 240


def test_a_budget_shared_by_two_processes_is_never_exceeded_and_spent_nearly_whole(user, start_web, private_redis):
    url = private_redis.url(0)
    env = {**private_redis.service_env(0), "RATE_LIMIT_PER_MINUTE": "100000", "RATE_LIMIT_PER_HOUR": str(BUDGET)}
    # Two servers, so each serves every other request.
    servers = [start_web(**env), start_web(**env)]
    counted_before = _count_calls(url)

    answers = [
        requests.get(f"{servers[i % 2].url}/api/auth/me", headers=user.headers, timeout=30) for i in range(BUDGET + 20)
    ]

    served = [r for r in answers if r.status_code == 200]
    assert BUDGET - 4 <= len(served) <= BUDGET, [r.status_code for r in answers]
    assert all(r.status_code == 429 for r in answers[len(served) :])  # once refused, refused
    for server in range(2):  # each process tells a budget that only goes down
        told = [int(r.headers[HOURLY]) for r in answers[server::2] if r.status_code == 200]
        assert told == sorted(told, reverse=True) and len(set(told)) == len(told) and told[-1] >= 0
    # Each process asked Redis for a lease of numbers, not for every request.
    assert _count_calls(url) - counted_before < len(answers) / 2


def _count_calls(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))

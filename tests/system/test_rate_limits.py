"""Seed 002's rate limits: one budget per client shared by every route, its headers on every
response of a limited route, Retry-After on a 429 only."""

from __future__ import annotations

import pytest

from config import Config
from tests.assertions import assert_error
from tests.auth.conftest import fresh_address

HEADERS = (
    "X-RateLimit-Limit-Minute",
    "X-RateLimit-Remaining-Minute",
    "X-RateLimit-Limit-Hour",
    "X-RateLimit-Remaining-Hour",
)


@pytest.fixture
def budget(app, monkeypatch):
    """Set the shared budget of this test: `budget(per_minute, per_hour)`."""

    def set_budget(per_minute: int = 60, per_hour: int = 1000) -> None:
        monkeypatch.setitem(app.config, "RATE_LIMIT_PER_MINUTE", per_minute)
        monkeypatch.setitem(app.config, "RATE_LIMIT_PER_HOUR", per_hour)

    return set_budget


def remaining(response) -> tuple[int, int]:
    return int(response.headers["X-RateLimit-Remaining-Minute"]), int(response.headers["X-RateLimit-Remaining-Hour"])


def test_the_defaults_are_seed_002s_60_a_minute_and_1000_an_hour(monkeypatch):
    for name in ("RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR"):
        monkeypatch.delenv(name, raising=False)
    config = Config()
    assert (config.RATE_LIMIT_PER_MINUTE, config.RATE_LIMIT_PER_HOUR) == (60, 1000)


def test_every_response_of_a_limited_route_carries_seed_002s_headers_and_no_retry_after(client, user, budget):
    budget()
    first = client.get("/api/auth/me", headers=user.headers)
    assert first.status_code == 200
    assert {name: first.headers[name] for name in HEADERS} == {
        "X-RateLimit-Limit-Minute": "60",
        "X-RateLimit-Remaining-Minute": "59",
        "X-RateLimit-Limit-Hour": "1000",
        "X-RateLimit-Remaining-Hour": "999",
    }
    assert "Retry-After" not in first.headers
    assert "X-RateLimit-Limit" not in first.headers and "X-RateLimit-Reset" not in first.headers
    # An error answer of a limited route counts and says so too.
    missing = client.get("/api/files/00000000-0000-0000-0000-000000000000", headers=user.headers)
    assert missing.status_code == 404
    assert remaining(missing) == (58, 998)
    assert "Retry-After" not in missing.headers


def test_one_budget_across_routes_for_a_signed_in_user(client, user, budget):
    budget(per_minute=6)
    assert remaining(client.get("/api/keys/", headers=user.headers)) == (5, 999)
    for _ in range(5):
        assert client.get("/api/auth/me", headers=user.headers).status_code == 200
    refused = client.get("/api/auth/me", headers=user.headers)
    error = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= error["details"]["retry_after"] <= 60
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])
    assert remaining(refused)[0] == 0

    # Another route (one with a limit of its own, for other methods) spends the same budget.
    other = client.get("/api/keys/", headers=user.headers)
    assert_error(other, 429, "RATE_LIMIT_EXCEEDED")
    assert other.headers["X-RateLimit-Remaining-Minute"] == "0"


def test_the_budget_is_per_user_not_per_address(client, make_user, budget):
    alice, bob = make_user(), make_user()  # both from the test client's one address
    budget(per_minute=3)
    for _ in range(3):
        assert client.get("/api/auth/me", headers=alice.headers).status_code == 200
    assert_error(client.get("/api/auth/me", headers=alice.headers), 429)
    served = client.get("/api/auth/me", headers=bob.headers)
    assert served.status_code == 200
    assert remaining(served)[0] == 2


def test_anonymous_callers_count_per_address_and_a_forged_token_does_not_dodge_it(client, budget):
    budget(per_minute=2)
    address = {"REMOTE_ADDR": fresh_address()}
    forged = {"Authorization": "Bearer not.a.token"}
    assert client.get("/api/providers/health", environ_base=address).status_code == 200
    assert client.get("/api/providers/health", environ_base=address, headers=forged).status_code == 200
    assert_error(client.get("/api/providers/health", environ_base=address), 429)
    assert client.get("/api/providers/health", environ_base={"REMOTE_ADDR": fresh_address()}).status_code == 200


@pytest.mark.parametrize("route", ["/api/auth/login", "/api/auth/token"])
def test_sign_in_headers_tell_the_stricter_attempt_rate(client, app, user, budget, monkeypatch, route):
    # Sign-in attempts are counted per address in the database (auth/lockout.py), so an outage of
    # the limiter's store never grants extra guesses; the headers report that stricter count.
    budget()
    monkeypatch.setitem(app.config, "AUTH_RATE_LIMIT", "3 per minute;10 per hour")
    address = {"REMOTE_ADDR": fresh_address()}
    wrong = {"username": user.username, "password": "not-the-Password-42"}

    def attempt():
        if route.endswith("/token"):
            return client.post(route, data=wrong, environ_base=address)
        return client.post(route, json=wrong, environ_base=address)

    answers = [attempt() for _ in range(3)]
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert [remaining(r) for r in answers] == [(2, 9), (1, 8), (0, 7)]
    assert answers[-1].headers["X-RateLimit-Limit-Minute"] == "3"
    assert answers[-1].headers["X-RateLimit-Limit-Hour"] == "10"
    assert all("Retry-After" not in r.headers for r in answers)
    refused = attempt()
    error = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])
    assert 1 <= error["details"]["retry_after"] <= 60
    assert remaining(refused) == (0, 6)


def test_registration_headers_tell_its_stricter_limit(client, app, budget, monkeypatch):
    budget()
    monkeypatch.setitem(app.config, "AUTH_RATE_LIMIT", "2 per minute;5 per hour")
    address = {"REMOTE_ADDR": fresh_address()}
    answers = [client.post("/api/auth/register", json={}, environ_base=address) for _ in range(2)]
    assert [remaining(r) for r in answers] == [(1, 4), (0, 3)]
    assert answers[0].headers["X-RateLimit-Limit-Minute"] == "2"
    refused = client.post("/api/auth/register", json={}, environ_base=address)
    error = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])


def test_uploads_have_a_stricter_limit_of_their_own(client, app, user, budget, monkeypatch):
    budget()
    monkeypatch.setitem(app.config, "UPLOAD_RATE_LIMIT", "2 per minute")
    for _ in range(2):
        r = client.post("/api/files/upload", data={}, headers=user.headers)
        assert r.status_code == 400  # no file: refused, but counted
        assert r.headers["X-RateLimit-Limit-Minute"] == "2"
        assert r.headers["X-RateLimit-Limit-Hour"] == "1000"  # the shared budget is still reported
    assert_error(client.post("/api/files/upload", data={}, headers=user.headers), 429, "RATE_LIMIT_EXCEEDED")
    # Reading files still has the shared budget.
    listed = client.get("/api/files/", headers=user.headers)
    assert listed.status_code == 200
    assert listed.headers["X-RateLimit-Limit-Minute"] == "60"


def test_probes_are_not_limited(client, budget):
    budget(per_minute=1)
    for _ in range(3):
        r = client.get("/api/health")
        assert r.status_code == 200
        assert "X-RateLimit-Limit-Minute" not in r.headers

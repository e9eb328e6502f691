"""Brute-force protection: failed sign-ins counted per account name and per client address."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.auth.conftest import assert_error, fresh_address
from tests.fixtures.processes import run_probe

LOCKED = "TOO_MANY_LOGIN_ATTEMPTS"


def fail(login, username: str, address: str | None = None, times: int = 1) -> None:
    for _ in range(times):
        assert_error(login(username, "Wrong-Horse-42", address), 401, "INVALID_CREDENTIALS")


def assert_locked(response, window: int = 900) -> None:
    assert_error(response, 429, LOCKED)
    seconds = response.json["error"]["details"]["retry_after"]
    assert 1 <= seconds <= window
    # Flask-Limiter rewrites Retry-After on every response: it keeps the later of ours and its own
    # reset time, and truncates, so the header is never earlier than the lock (give or take 1 s).
    assert int(response.headers["Retry-After"]) >= seconds - 1


def test_an_account_name_locks_after_five_failures_whatever_the_address(make_user, login):
    victim, bystander = make_user(), make_user()
    for _ in range(5):
        fail(login, victim.username)  # each from another address

    # Even the right password is refused now, from any address.
    assert_locked(login(victim.username, victim.password))
    assert_locked(login(victim.username.upper(), victim.password))
    assert login(bystander.username, bystander.password).status_code == 200


def test_unknown_names_lock_the_same_way(login):
    fail(login, "ghost", times=5)
    assert_locked(login("ghost", "Anything-at-all-1"))


def test_an_address_locks_after_five_failures_whatever_the_name(make_user, login):
    user = make_user()
    address = fresh_address()
    for n in range(5):
        fail(login, f"guess{n}", address)

    assert_locked(login(user.username, user.password, address))
    assert login(user.username, user.password).status_code == 200  # from elsewhere


def test_a_success_clears_the_account_names_count(user, login):
    fail(login, user.username, times=4)
    assert login(user.username, user.password).status_code == 200

    fail(login, user.username, times=5)  # a fresh allowance of five
    assert_locked(login(user.username, user.password))


def test_a_success_does_not_clear_the_address_count(user, login):
    address = fresh_address()
    for n in range(4):
        fail(login, f"guess{n}", address)
    assert login(user.username, user.password, address).status_code == 200

    fail(login, "guess4", address)  # the fifth failure from there
    assert_locked(login(user.username, user.password, address))


def test_the_lock_lifts_when_the_window_has_passed(user, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_WINDOW_SECONDS", 1)
    fail(login, user.username, times=5)
    assert_locked(login(user.username, user.password), window=1)

    time.sleep(1.2)

    assert login(user.username, user.password).status_code == 200


def test_the_threshold_is_configurable(user, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 2)
    fail(login, user.username, times=2)
    assert_locked(login(user.username, user.password))


def test_the_oauth2_form_shares_the_counts(user, login, client):
    fail(login, user.username, times=5)
    form = {"username": user.username, "password": user.password}
    assert_locked(client.post("/api/auth/token", data=form, environ_base={"REMOTE_ADDR": fresh_address()}))


def test_guessing_the_current_password_through_the_profile_locks_too(client, user, unchanged):
    wrong = {"email": "new@example.com", "current_password": "Wrong-Horse-42"}
    with unchanged(besides=("login_failures",)):
        for _ in range(5):
            assert_error(client.put("/api/auth/profile", json=wrong, headers=user.headers), 401, "INVALID_CREDENTIALS")
        right = {"email": "new@example.com", "current_password": user.password}
        assert_locked(client.put("/api/auth/profile", json=right, headers=user.headers))
    assert client.get("/api/auth/profile", headers=user.headers).json["user"]["email"] == user.email


def test_parallel_guesses_cannot_slip_past_the_threshold(app, user):
    results: list[int] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        r = app.test_client().post(
            "/api/auth/login",
            json={"username": user.username, "password": f"Wrong-Horse-{n}"},
            environ_base={"REMOTE_ADDR": f"198.51.100.{n}"},
        )
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [401] * 5 + [429] * 7


def test_counts_live_in_the_database_without_redis(user, login, app_ctx, test_env):
    from scanner.auth.models import LoginFailure
    from scanner.extensions import db

    if test_env.get("REDIS_URL"):
        pytest.skip("with Redis the counts live there")
    address = fresh_address()
    fail(login, user.username, address, times=2)
    db.session.remove()
    rows = {row.key: row.count for row in db.session.query(LoginFailure)}
    assert rows == {f"ip:{address}": 2, f"user:{user.username}": 2}


def test_counts_live_in_redis_with_a_ttl(user, login, redis_client, app):
    address = fresh_address()
    fail(login, user.username, address, times=2)
    key = f"{app.config['CACHE_KEY_PREFIX']}auth:login:user:{user.username}"
    assert int(redis_client.get(key)) == 2
    assert 0 < redis_client.pttl(key) <= 900 * 1000


def test_lockout_falls_back_to_the_database_when_redis_is_down(user, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    fail(login, user.username, times=5)
    assert_locked(login(user.username, user.password))


@pytest.mark.parametrize(("hops", "analyst"), [("1", 200), ("0", 429)])
def test_behind_a_trusted_router_one_clients_failures_lock_only_that_client(tmp_path, hops, analyst):
    # With TRUSTED_PROXIES=1 the lockout counts the address the router saw; without it, every
    # client shares the router's address, so one attacker locks everyone out.
    env = {**os.environ, "TRUSTED_PROXIES": hops, "INSTANCE_DIR": str(tmp_path)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'probe.db'}"
    env.pop("REDIS_URL", None)  # lockout counts in this process, apart from the run's Redis
    result = run_probe("tests.auth.proxy_probe", env=env, timeout=120)

    assert result["attacker"][:5] == [401] * 5 and result["attacker"][5] == 429
    assert result["analyst"] == analyst

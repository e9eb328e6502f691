"""Sign-in protection: per (account, address), per account across addresses with growing delays,
per address across accounts with a high threshold; an office behind one address keeps working."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.assertions import assert_error
from tests.auth.conftest import fresh_address
from tests.fixtures.processes import run_probe

LOCKED = "TOO_MANY_LOGIN_ATTEMPTS"


def fail(login, username: str, address: str | None = None, times: int = 1) -> None:
    for _ in range(times):
        assert_error(login(username, "Wrong-Horse-42", address), 401, "INVALID_CREDENTIALS")


def assert_locked(response, window: int = 900) -> int:
    assert_error(response, 429, LOCKED)
    seconds = response.json["error"]["details"]["retry_after"]
    assert 1 <= seconds <= window
    # Flask-Limiter rewrites Retry-After on every response: it keeps the later of ours and its own
    # reset time, and truncates, so the header is never earlier than the lock (give or take 1 s).
    assert int(response.headers["Retry-After"]) >= seconds - 1
    return seconds


def test_five_failures_lock_the_account_from_that_address_only(make_user, login):
    victim, colleague = make_user(), make_user()
    office, home = fresh_address(), fresh_address()
    fail(login, victim.username, office, times=5)

    assert_locked(login(victim.username, victim.password, office))  # even the right password
    assert_locked(login(victim.username.upper(), victim.password, office))
    assert login(victim.username, victim.password, home).status_code == 200
    assert login(colleague.username, colleague.password, office).status_code == 200


def test_an_office_behind_one_address_keeps_signing_in_while_one_colleague_mistypes(make_user, login):
    office = fresh_address()
    typo_prone, *others = [make_user() for _ in range(5)]
    fail(login, typo_prone.username, office, times=5)
    for _ in range(5):  # ten mistypes in all: the last five are refused before the password is read
        assert_locked(login(typo_prone.username, "Wrong-Horse-42", office))

    for colleague in others:
        assert login(colleague.username, colleague.password, office).status_code == 200
    assert_locked(login(typo_prone.username, typo_prone.password, office))


def test_unknown_names_lock_the_same_way(login):
    address = fresh_address()
    fail(login, "ghost", address, times=5)
    assert_locked(login("ghost", "Anything-at-all-1", address))


def test_failures_across_addresses_delay_only_the_addresses_that_failed(user, login):
    attackers = [fresh_address() for _ in range(11)]
    for address in attackers:  # the eleventh failure on the account opens a 30 s delay
        fail(login, user.username, address)

    first = assert_locked(login(user.username, "Wrong-Horse-42", attackers[0]), window=30)
    assert login(user.username, user.password, fresh_address()).status_code == 200  # the owner, elsewhere

    fail(login, user.username, fresh_address())  # one more failure doubles the delay
    second = assert_locked(login(user.username, "Wrong-Horse-42", attackers[1]), window=60)
    assert second > first


def test_spraying_from_one_address_stops_there_but_its_known_accounts_still_sign_in(make_user, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_IP", 8)
    office = fresh_address()
    regular, newcomer = make_user(), make_user()
    assert login(regular.username, regular.password, office).status_code == 200
    for n in range(8):
        fail(login, f"guess{n}", office)

    assert_locked(login("guess8", "Wrong-Horse-42", office))
    assert login(regular.username, regular.password, office).status_code == 200  # signed in from there before
    assert_locked(login(newcomer.username, newcomer.password, office))  # never signed in from there
    assert login(newcomer.username, newcomer.password, fresh_address()).status_code == 200


def test_a_success_clears_the_count_of_that_address(user, login):
    address = fresh_address()
    fail(login, user.username, address, times=4)
    assert login(user.username, user.password, address).status_code == 200

    fail(login, user.username, address, times=5)  # a fresh allowance of five
    assert_locked(login(user.username, user.password, address))


def test_the_lock_lifts_when_the_window_has_passed(user, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_WINDOW_SECONDS", 1)
    address = fresh_address()
    fail(login, user.username, address, times=5)
    assert_locked(login(user.username, user.password, address), window=1)

    time.sleep(1.2)

    assert login(user.username, user.password, address).status_code == 200


def test_the_threshold_is_configurable(user, login, app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 2)
    address = fresh_address()
    fail(login, user.username, address, times=2)
    assert_locked(login(user.username, user.password, address))


def test_the_oauth2_form_shares_the_counts(user, login, client):
    address = fresh_address()
    fail(login, user.username, address, times=5)
    form = {"username": user.username, "password": user.password}
    assert_locked(client.post("/api/auth/token", data=form, environ_base={"REMOTE_ADDR": address}))


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
    address = fresh_address()

    def guess(n: int) -> None:
        r = app.test_client().post(
            "/api/auth/login",
            json={"username": user.username, "password": f"Wrong-Horse-{n}"},
            environ_base={"REMOTE_ADDR": address},
        )
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [401] * 5 + [429] * 7


def test_sign_in_attempts_per_address_are_limited_in_the_database(user, login, app, monkeypatch, app_ctx):
    from scanner.auth.models import LoginFailure
    from scanner.extensions import db

    monkeypatch.setitem(app.config, "AUTH_RATE_LIMIT", "3 per minute")
    address = fresh_address()
    for _ in range(3):
        assert login(user.username, user.password, address).status_code == 200
    refused = login(user.username, user.password, address)

    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    db.session.remove()
    assert db.session.get(LoginFailure, f"rate:60:{address}").count == 4  # shared by every web process


def test_a_redis_outage_neither_grants_guesses_nor_forgets_the_lock(user, login, app, monkeypatch):
    address = fresh_address()
    fail(login, user.username, address, times=5)
    assert_locked(login(user.username, user.password, address))

    real_redis = app.config["REDIS_URL"]
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    for _ in range(5):
        assert_locked(login(user.username, "Wrong-Horse-42", address))

    monkeypatch.setitem(app.config, "REDIS_URL", real_redis)  # back again
    assert_locked(login(user.username, user.password, address))


@pytest.mark.parametrize(("hops", "analyst"), [("1", 200), ("0", 429)])
def test_behind_a_trusted_router_one_clients_failures_lock_only_that_client(tmp_path, hops, analyst):
    # With TRUSTED_PROXIES=1 the lockout counts the address the router saw; without it, every
    # client shares the router's address, so one sprayer stops new sign-ins from everyone.
    env = {**os.environ, "TRUSTED_PROXIES": hops, "INSTANCE_DIR": str(tmp_path), "LOGIN_MAX_FAILURES_PER_IP": "5"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'probe.db'}"
    env.pop("REDIS_URL", None)
    result = run_probe("tests.auth.proxy_probe", env=env, timeout=120)

    assert result["attacker"][:5] == [401] * 5 and result["attacker"][5] == 429
    assert result["analyst"] == analyst

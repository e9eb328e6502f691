"""Registration: what is accepted, how it is normalised, and every bad input refused untouched."""

from __future__ import annotations

import pytest

from tests.assertions import assert_error

GOOD = {"username": "analyst", "email": "analyst@example.com", "password": "Correct-Horse-42"}


def register(client, **changes):
    body = {**GOOD, **changes}
    body = {k: v for k, v in body.items() if v is not ...}
    return client.post("/api/auth/register", json=body)


BAD_BODIES = {
    "missing username": {"username": ...},
    "missing email": {"email": ...},
    "missing password": {"password": ...},
    "empty username": {"username": ""},
    "empty email": {"email": ""},
    "empty password": {"password": ""},
    "null username": {"username": None},
    "null password": {"password": None},
    "username too short": {"username": "ab"},
    "username too long": {"username": "a" * 33},
    "username far too long": {"username": "a" * 5000},
    "username with a space": {"username": "john doe"},
    "username with an at sign": {"username": "john@doe"},
    "username starting with a dot": {"username": ".john"},
    "username in Cyrillic look-alikes": {"username": "аnalyst"},  # first letter is U+0430
    "username with a zero-width space": {"username": "ana\u200blyst"},
    "username as a number": {"username": 12345},
    "username as a list": {"username": ["analyst"]},
    "username as an object": {"username": {"name": "analyst"}},
    "sql in username": {"username": "admin'--"},
    "sql drop in username": {"username": "x'; DROP TABLE users;--"},
    "email without at": {"email": "analyst.example.com"},
    "email without domain": {"email": "analyst@"},
    "email with sql": {"email": "a@example.com' OR '1'='1"},
    "email too long": {"email": "a" * 250 + "@example.com"},
    "email as a bool": {"email": True},
    "password too short": {"password": "Short-1"},
    "password too long": {"password": "Aa1-" * 32 + "x"},
    "password of one kind": {"password": "onlylowercaseletters"},
    "password of digits only": {"password": "12345678901234"},
    "common password": {"password": "password123"},
    "common password, capitalised": {"password": "Password12"},
    "keyboard walk with a digit": {"password": "qwertyuiop1"},
    "a sequence": {"password": "abcdefghi1"},
    "a repeated pattern": {"password": "Aa1-" * 32},
    "the username with digits": {"username": "analyst", "password": "Analyst123"},
    "password is the username": {"password": "analyst", "username": "analyst"},
    "password is the username (long)": {"username": "Analyst2024x", "password": "analyst2024X"},
    "password is the email": {"password": "analyst@example.com"},
    "password as a number": {"password": 1234567890123},
    "unknown field": {"role": "admin"},
    "another unknown field": {"is_admin": True},
}


@pytest.mark.parametrize("changes", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_input_is_refused_and_changes_nothing(client, unchanged, changes):
    with unchanged():
        error = assert_error(register(client, **changes), 400, "VALIDATION_ERROR")
    assert error["details"], error


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "username=analyst&password=x", "content_type": "application/x-www-form-urlencoded"},
        {"data": "{not json", "content_type": "application/json"},
        {"data": '["analyst", "analyst@example.com", "Correct-Horse-42"]', "content_type": "application/json"},
        {"data": "null", "content_type": "application/json"},
    ],
    ids=["form body", "broken json", "json array", "json null"],
)
def test_a_body_that_is_not_a_json_object_is_refused(client, unchanged, kwargs):
    with unchanged():
        response = client.post("/api/auth/register", **kwargs)
        assert_error(response, 400)


def test_an_oversized_body_is_refused_before_it_is_read(client, unchanged):
    with unchanged():
        assert_error(register(client, password="Aa1-" * 10_000), 413)


def test_password_rule_is_explained(client):
    error = assert_error(register(client, password="alllowercase"), 400)
    assert "10 to 128 characters" in error["message"]
    assert "two kinds" in error["message"]
    assert error["details"] == {"json": {"password": [error["message"].removeprefix("password: ")]}}


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password123", "very common password"),
        ("Password12", "very common password"),
        ("qwertyuiop1", "similar to a commonly used password"),
        ("zxcvbnm,./123", "rows of keys"),
    ],
)
def test_an_easy_password_is_refused_with_the_reason(client, unchanged, password, why):
    with unchanged():
        error = assert_error(register(client, password=password), 400, "VALIDATION_ERROR")
    assert "too easy to guess" in error["message"]
    assert why in error["message"]
    assert error["details"]["json"]["password"]


def test_username_rule_is_explained(client):
    error = assert_error(register(client, username="no spaces"), 400)
    assert "3 to 32 characters" in error["message"]


@pytest.mark.parametrize(
    "password",
    [
        "securePassword123",
        "zq8Rt-mvp3",
        "Lemon-kite7" * 11 + "Plum-3",
        "correct horse battery",
        "'; DROP TABLE users; --",
    ],
    ids=["seed", "shortest", "longest", "passphrase", "sql-ish"],
)
def test_passwords_that_follow_the_rule_are_accepted_and_work(client, password):
    assert register(client, password=password).status_code == 201
    r = client.post("/api/auth/login", json={"username": "analyst", "password": password})
    assert r.status_code == 200


def test_username_keeps_its_case_and_email_is_lower_cased(client):
    r = register(client, username="Jane.Doe-1", email="Jane.DOE@Example.COM")
    assert r.status_code == 201
    assert r.json["user"]["username"] == "Jane.Doe-1"
    assert r.json["user"]["email"] == "jane.doe@example.com"


def test_full_width_name_is_stored_normalised(client):
    r = register(client, username="ａｎａｌｙｓｔ")
    assert r.status_code == 201
    assert r.json["user"]["username"] == "analyst"


@pytest.mark.parametrize(
    "look_alike",
    [
        "ANALYST",
        "Analyst",
        "ａｎａｌｙｓｔ",  # full-width
        "𝐚𝐧𝐚𝐥𝐲𝐬𝐭",  # mathematical bold
        "ＡＮＡＬＹＳＴ",
    ],
    ids=["upper", "title", "full-width", "math-bold", "full-width-upper"],
)
def test_names_that_normalise_to_a_taken_one_conflict(client, unchanged, look_alike):
    assert register(client).status_code == 201
    with unchanged():
        error = assert_error(register(client, username=look_alike, email="other@example.com"), 409, "CONFLICT")
    assert error["details"] == {"field": "username"}


def test_kelvin_sign_normalises_to_k(client, unchanged):
    assert register(client, username="kilo").status_code == 201
    with unchanged():
        assert_error(register(client, username="\u212ailo", email="other@example.com"), 409)


@pytest.mark.parametrize("email", ["analyst@example.com", "ANALYST@EXAMPLE.COM", "Analyst@Example.com"])
def test_an_email_registered_in_any_case_conflicts(client, unchanged, email):
    assert register(client).status_code == 201
    with unchanged():
        error = assert_error(register(client, username="someone_else", email=email), 409, "CONFLICT")
    assert error["details"] == {"field": "email"}


def test_registration_never_creates_an_admin(client, unchanged):
    with unchanged():
        assert_error(register(client, role="admin"), 400)
    assert register(client).json["user"]["role"] == "user"


def test_registration_is_rate_limited_per_address(client, unchanged):
    with unchanged():
        for _ in range(20):
            r = client.post("/api/auth/register", json={}, environ_base={"REMOTE_ADDR": "192.0.2.10"})
            assert r.status_code == 400
        limited = client.post("/api/auth/register", json=GOOD, environ_base={"REMOTE_ADDR": "192.0.2.10"})
        assert_error(limited, 429, "RATE_LIMIT_EXCEEDED")
        assert int(limited.headers["Retry-After"]) > 0
    other = client.post("/api/auth/register", json=GOOD, environ_base={"REMOTE_ADDR": "192.0.2.11"})
    assert other.status_code == 201

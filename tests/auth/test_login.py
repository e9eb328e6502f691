"""Sign-in: JSON login, the OAuth2 password form, token claims, password hashes."""

from __future__ import annotations

import uuid

import pytest

from tests.assertions import assert_error
from tests.auth.conftest import bearer, fresh_address


def test_unknown_user_and_wrong_password_are_answered_alike(user, login):
    wrong_password = assert_error(login(user.username, "Wrong-Horse-42"), 401, "INVALID_CREDENTIALS")
    no_such_user = assert_error(login("nobody_here", user.password), 401, "INVALID_CREDENTIALS")
    assert wrong_password == no_such_user


@pytest.mark.parametrize("spelling", [str.upper, str.title, lambda s: "".join(chr(ord(c) + 0xFEE0) for c in s)])
def test_any_spelling_that_normalises_to_the_name_signs_in(user, login, spelling):
    assert login(spelling(user.username), user.password).status_code == 200


BAD_LOGINS = {
    "missing username": {"password": "Correct-Horse-42"},
    "missing password": {"username": "analyst"},
    "empty username": {"username": "", "password": "Correct-Horse-42"},
    "empty password": {"username": "analyst", "password": ""},
    "null password": {"username": "analyst", "password": None},
    "username as a number": {"username": 7, "password": "Correct-Horse-42"},
    "password as a list": {"username": "analyst", "password": ["Correct-Horse-42"]},
    "overlong username": {"username": "a" * 129, "password": "Correct-Horse-42"},
    "overlong password": {"username": "analyst", "password": "x" * 1025},
    "unknown field": {"username": "analyst", "password": "Correct-Horse-42", "remember_me": True},
}


@pytest.mark.parametrize("body", BAD_LOGINS.values(), ids=BAD_LOGINS.keys())
def test_bad_login_input_is_refused_and_changes_nothing(client, make_user, unchanged, body):
    make_user("analyst")
    with unchanged():
        assert_error(client.post("/api/auth/login", json=body), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"username": "analyst", "password": "Correct-Horse-42"}},
        {"data": '{"username": "analyst", "password": "Correct-Horse-42"}', "content_type": "text/plain"},
    ],
    ids=["form", "text"],
)
def test_a_login_that_is_not_json_says_what_to_send(client, make_user, unchanged, kwargs):
    make_user("analyst")
    with unchanged():
        response = client.post("/api/auth/login", **kwargs)
    assert_error(response, 400, "VALIDATION_ERROR")
    assert response.json["error"]["message"] == (
        "Send a JSON body (Content-Type: application/json) with username and password"
    )


@pytest.mark.parametrize(
    "username",
    ["' OR '1'='1", "analyst' --", 'analyst"; DROP TABLE users; --', "%", "_________", "analyst%"],
)
def test_sql_ish_usernames_are_just_wrong_names(make_user, login, unchanged, username):
    make_user("analyst")
    with unchanged(besides=("login_failures",)):  # a failed sign-in is counted, nothing else
        assert_error(login(username, "' OR '1'='1"), 401, "INVALID_CREDENTIALS")


def test_access_token_claims(user, claims, app):
    access = claims(user.access_token)
    refresh = claims(user.refresh_token)

    assert {"iat", "exp", "jti", "role", "type", "family", "sub"} <= set(access)
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["role"] == "user" and access["sub"] == user.id
    assert access["family"] == refresh["family"]
    assert access["jti"] != refresh["jti"]
    assert access["exp"] - access["iat"] == app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 900
    assert refresh["exp"] - refresh["iat"] == app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds() == 7 * 86400


def test_oauth2_password_form(user, client, claims):
    form = {"grant_type": "password", "username": user.username, "password": user.password, "scope": ""}

    r = client.post("/api/auth/token", data=form)

    assert r.status_code == 200, r.json
    assert set(r.json) == {"access_token", "token_type", "refresh_token", "expires_in"}
    assert r.json["token_type"] == "bearer"
    assert r.json["expires_in"] == 900
    assert r.headers["Cache-Control"] == "no-store"
    assert claims(r.json["access_token"])["sub"] == user.id
    assert client.get("/api/auth/profile", headers=bearer(r.json["access_token"])).status_code == 200
    assert client.post("/api/auth/refresh", headers=bearer(r.json["refresh_token"])).status_code == 200


def test_oauth2_form_ignores_client_parameters_it_does_not_use(user, client):
    form = {"username": user.username, "password": user.password, "client_id": "swagger", "client_secret": "x"}
    assert client.post("/api/auth/token", data=form).status_code == 200


@pytest.mark.parametrize(
    "kwargs,status",
    [
        ({"data": {"grant_type": "client_credentials", "username": "analyst", "password": "pw"}}, 400),
        ({"data": {"grant_type": "password", "username": "analyst"}}, 400),
        ({"json": {"username": "analyst", "password": "Correct-Horse-42"}}, 400),
        ({"data": {"username": "analyst", "password": "Wrong-Horse-42"}}, 401),
    ],
    ids=["other grant", "no password", "json instead of form", "wrong password"],
)
def test_oauth2_form_errors(client, make_user, unchanged, kwargs, status):
    make_user("analyst")
    with unchanged(besides=("login_failures",)):
        assert_error(client.post("/api/auth/token", environ_base={"REMOTE_ADDR": fresh_address()}, **kwargs), status)


def test_openapi_declares_the_password_flow_for_swagger_ui(client):
    spec = client.get("/api/openapi.json").json
    schemes = spec["components"]["securitySchemes"]

    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/api/auth/token"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in spec["security"] and {"oauth2": []} in spec["security"]
    token_op = spec["paths"]["/api/auth/token"]["post"]
    assert token_op["security"] == []
    assert "application/x-www-form-urlencoded" in token_op["requestBody"]["content"]
    for path in ("/api/auth/register", "/api/auth/login"):
        assert spec["paths"][path]["post"]["security"] == []
    assert "requestBody" in spec["paths"]["/api/auth/profile"]["put"]


def test_passwords_are_stored_as_argon2id(user, app_ctx):
    from scanner.auth.models import User
    from scanner.extensions import db

    stored = db.session.get(User, uuid.UUID(user.id)).password_hash
    assert stored.startswith("$argon2id$")
    assert user.password not in stored


def test_a_stronger_hash_setting_rehashes_at_the_next_login(user, login, app, app_ctx, monkeypatch):

    from scanner.auth.models import User
    from scanner.extensions import db

    def stored_hash() -> str:
        db.session.remove()
        return db.session.get(User, uuid.UUID(user.id)).password_hash

    before = stored_hash()
    monkeypatch.setitem(app.config, "PASSWORD_HASH_TIME_COST", app.config["PASSWORD_HASH_TIME_COST"] + 1)

    assert login(user.username, user.password).status_code == 200

    after = stored_hash()
    assert after != before
    assert f"t={app.config['PASSWORD_HASH_TIME_COST']}" in after
    assert login(user.username, user.password).status_code == 200
    assert stored_hash() == after  # already at the current cost: left alone


def test_login_is_rate_limited_per_address(client, user):
    address = {"REMOTE_ADDR": "192.0.2.20"}
    for n in range(20):  # sign-in attempts, whatever their outcome; none fails twice on one name
        body = {"username": f"someone{n}", "password": "Wrong-Horse-42"}
        assert client.post("/api/auth/login", json=body, environ_base=address).status_code == 401
    body = {"username": user.username, "password": user.password}
    assert_error(client.post("/api/auth/login", json=body, environ_base=address), 429, "RATE_LIMIT_EXCEEDED")
    assert client.post("/api/auth/login", json=body, environ_base={"REMOTE_ADDR": "192.0.2.21"}).status_code == 200

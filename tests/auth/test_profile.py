"""GET and PUT /api/auth/profile beyond the seed's examples."""

from __future__ import annotations

import uuid

import pytest

from tests.assertions import assert_error
from tests.auth.conftest import bearer


@pytest.fixture
def stored(app_ctx):
    """The user's row as the database has it now."""

    def read(user_id: str) -> dict:
        from scanner.auth.models import User
        from scanner.extensions import db

        db.session.remove()
        row = db.session.get(User, uuid.UUID(user_id))
        return {c: getattr(row, c) for c in ("username", "username_key", "email", "password_hash", "never_upload")}

    return read


def put(client, user, body):
    return client.put("/api/auth/profile", json=body, headers=user.headers)


def test_never_upload_is_off_by_default_and_can_be_turned_on(client, user, stored):
    assert client.get("/api/auth/profile", headers=user.headers).json["user"]["never_upload"] is False

    r = put(client, user, {"never_upload": True})

    assert r.status_code == 200
    assert r.json["user"]["never_upload"] is True
    assert client.get("/api/auth/profile", headers=user.headers).json["user"]["never_upload"] is True
    assert stored(user.id)["never_upload"] is True
    assert put(client, user, {"never_upload": False}).json["user"]["never_upload"] is False


def test_renaming_needs_no_password(client, user, login):
    r = put(client, user, {"username": "new_name"})
    assert r.status_code == 200
    assert r.json["user"]["username"] == "new_name"
    assert login("new_name", user.password).status_code == 200


def test_changing_only_the_case_of_ones_own_name_is_allowed(client, user):
    r = put(client, user, {"username": user.username.upper()})
    assert r.status_code == 200
    assert r.json["user"]["username"] == user.username.upper()


def test_the_same_email_in_another_case_needs_no_password(client, user):
    assert put(client, user, {"email": user.email.upper()}).status_code == 200


def test_changing_the_email_with_the_current_password(client, user, stored):
    r = put(client, user, {"email": "New.Address@Example.com", "current_password": user.password})
    assert r.status_code == 200
    assert r.json["user"]["email"] == "new.address@example.com"
    assert stored(user.id)["email"] == "new.address@example.com"


BAD_UPDATES = {
    "empty body": ({}, 400),
    "unknown field": ({"role": "admin"}, 400),
    "id is not editable": ({"id": str(uuid.uuid4())}, 400),
    "null username": ({"username": None}, 400),
    "empty username": ({"username": ""}, 400),
    "overlong username": ({"username": "a" * 33}, 400),
    "bad username characters": ({"username": "robert'); DROP TABLE users;--"}, 400),
    "username as number": ({"username": 42}, 400),
    "bad email": ({"email": "nope", "current_password": "Correct-Horse-42"}, 400),
    "email without current password": ({"email": "new@example.com"}, 400),
    "password without current password": ({"new_password": "Brand-New-Pass-7"}, 400),
    "weak new password": ({"new_password": "weakpassword", "current_password": "Correct-Horse-42"}, 400),
    "overlong new password": ({"new_password": "Aa1-" * 33, "current_password": "Correct-Horse-42"}, 400),
    "new password same as current": ({"new_password": "Correct-Horse-42", "current_password": "Correct-Horse-42"}, 400),
    "new password is the username": ({"new_password": "Analyst_One7", "current_password": "Correct-Horse-42"}, 400),
    "never_upload as a string": ({"never_upload": "true"}, 400),
    "never_upload as a number": ({"never_upload": 1}, 400),
    "never_upload null": ({"never_upload": None}, 400),
    "wrong current password": ({"email": "new@example.com", "current_password": "Wrong-Horse-42"}, 401),
    "wrong current password, rename only": ({"username": "renamed", "current_password": "Wrong-Horse-42"}, 401),
}


@pytest.mark.parametrize("body,status", BAD_UPDATES.values(), ids=BAD_UPDATES.keys())
def test_bad_updates_change_nothing(client, make_user, stored, unchanged, body, status):
    user = make_user("analyst_one7")
    before = stored(user.id)
    with unchanged(besides=("login_failures",)):
        error = assert_error(put(client, user, body), status)
    assert stored(user.id) == before
    assert error["message"]


def test_explains_why_the_current_password_is_needed(client, user):
    error = assert_error(put(client, user, {"new_password": "Brand-New-Pass-7"}), 400)
    assert error["details"] == {"json": {"current_password": [error["message"].removeprefix("current_password: ")]}}


@pytest.mark.parametrize("spelling", [str.upper, lambda s: "".join(chr(ord(c) + 0xFEE0) for c in s)])
def test_renaming_to_a_look_alike_of_a_taken_name_conflicts(client, make_user, stored, spelling):
    user, other = make_user(), make_user()
    before = stored(user.id)
    error = assert_error(put(client, user, {"username": spelling(other.username)}), 409, "CONFLICT")
    assert error["details"] == {"field": "username"}
    assert stored(user.id) == before


def test_moving_to_a_taken_email_conflicts(client, make_user, stored):
    user, other = make_user(), make_user()
    before = stored(user.id)
    body = {"email": other.email.upper(), "current_password": user.password}
    error = assert_error(put(client, user, body), 409, "CONFLICT")
    assert error["details"] == {"field": "email"}
    assert stored(user.id) == before


def test_a_failed_password_change_keeps_the_other_sessions(client, user, login):
    other = login(user.username, user.password).json
    wrong = {"new_password": "Brand-New-Pass-7", "current_password": "Wrong-Horse-42"}
    assert_error(put(client, user, wrong), 401)
    assert client.get("/api/auth/profile", headers=bearer(other["access_token"])).status_code == 200

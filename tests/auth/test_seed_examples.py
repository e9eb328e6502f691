"""Seed 001's Authentication section, example by example, with its bodies as written."""

from __future__ import annotations

import uuid

from tests.assertions import assert_error
from tests.auth.conftest import bearer

JOHN = {"username": "johndoe", "email": "john.doe@example.com", "password": "securePassword123"}
SEED_USER_KEYS = {"id", "username", "email"}


def register_john(client):
    r = client.post("/api/auth/register", json=JOHN)
    assert r.status_code == 201, r.json
    return r


def login_john(client):
    r = client.post("/api/auth/login", json={"username": "johndoe", "password": JOHN["password"]})
    assert r.status_code == 200, r.json
    return r.json


def test_register_a_new_user(client):
    r = register_john(client)

    assert r.json["message"] == "User registered successfully"
    user = r.json["user"]
    assert set(user) >= SEED_USER_KEYS
    uuid.UUID(user["id"])
    assert user["username"] == "johndoe"
    assert user["email"] == "john.doe@example.com"
    assert user["role"] == "user"
    assert user["never_upload"] is False
    assert not any("password" in key for key in user)
    assert "$argon2" not in r.get_data(as_text=True)


def test_register_error_responses(client):
    assert_error(client.post("/api/auth/register", json={"username": "johndoe"}), 400, "VALIDATION_ERROR")
    register_john(client)
    assert_error(client.post("/api/auth/register", json=JOHN), 409, "CONFLICT")


def test_login(client):
    registered = register_john(client).json["user"]

    body = login_john(client)

    assert set(body) == {"access_token", "refresh_token", "user"}
    assert body["access_token"].startswith("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.")
    assert body["refresh_token"].startswith("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.")
    assert body["user"] == registered


def test_login_error_responses(client):
    register_john(client)
    assert_error(client.post("/api/auth/login", json={"username": "johndoe"}), 400, "VALIDATION_ERROR")
    wrong = client.post("/api/auth/login", json={"username": "johndoe", "password": "wrongPassword123"})
    assert_error(wrong, 401)


def test_refresh_token(client):
    register_john(client)
    tokens = login_john(client)

    r = client.post("/api/auth/refresh", headers=bearer(tokens["refresh_token"]))

    assert r.status_code == 200, r.json
    assert set(r.json) == {"access_token", "refresh_token"}
    assert r.json["access_token"] != tokens["access_token"]
    assert client.get("/api/auth/profile", headers=bearer(r.json["access_token"])).status_code == 200
    assert_error(client.post("/api/auth/refresh", headers=bearer("not-a-token")), 401)


def test_get_user_profile(client):
    registered = register_john(client).json["user"]
    tokens = login_john(client)

    r = client.get("/api/auth/profile", headers=bearer(tokens["access_token"]))

    assert r.status_code == 200
    assert r.json == {"user": registered}
    assert_error(client.get("/api/auth/profile"), 401)


def test_update_user_profile(client):
    register_john(client)
    tokens = login_john(client)
    body = {
        "username": "johndoe_updated",
        "email": "john.updated@example.com",
        "current_password": "securePassword123",
        "new_password": "newSecurePassword456",
    }

    r = client.put("/api/auth/profile", json=body, headers=bearer(tokens["access_token"]))

    assert r.status_code == 200, r.json
    assert r.json["message"] == "Profile updated successfully"
    assert r.json["user"]["username"] == "johndoe_updated"
    assert r.json["user"]["email"] == "john.updated@example.com"
    assert r.json["user"]["id"] == tokens["user"]["id"]
    old = client.post("/api/auth/login", json={"username": "johndoe_updated", "password": "securePassword123"})
    assert_error(old, 401)
    new = client.post("/api/auth/login", json={"username": "johndoe_updated", "password": "newSecurePassword456"})
    assert new.status_code == 200


def test_update_user_profile_error_responses(client, make_user):
    register_john(client)
    headers = bearer(login_john(client)["access_token"])
    other = make_user()

    assert_error(client.put("/api/auth/profile", json={"email": "not-an-email"}, headers=headers), 400)
    wrong = {"email": "john.updated@example.com", "current_password": "notMyPassword1"}
    assert_error(client.put("/api/auth/profile", json=wrong, headers=headers), 401, "INVALID_CREDENTIALS")
    taken = {"username": other.username}
    assert_error(client.put("/api/auth/profile", json=taken, headers=headers), 409, "CONFLICT")
    assert_error(client.put("/api/auth/profile", json={"username": "x_y_z"}), 401)


def test_logout(client):
    register_john(client)
    tokens = login_john(client)

    r = client.post("/api/auth/logout", headers=bearer(tokens["access_token"]))

    assert r.status_code == 200
    assert r.json == {"message": "Successfully logged out"}
    # Unlike the seed's stateless note, this server really ends the session.
    assert_error(client.get("/api/auth/profile", headers=bearer(tokens["access_token"])), 401, "TOKEN_REVOKED")
    assert_error(client.post("/api/auth/logout", headers=bearer(tokens["access_token"])), 401)
    assert_error(client.post("/api/auth/logout"), 401)

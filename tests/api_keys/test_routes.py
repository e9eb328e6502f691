"""Seed 001's API Key Management endpoints, as a user calls them."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

import pytest

KEYS = "/api/keys/"
SEED_FIELDS = {"id", "name", "is_active", "created_at", "updated_at"}
FIELDS = SEED_FIELDS | {"last4", "is_verified", "per_minute", "per_day", "last_used_at", "last_error", "usage"}
FIELDS |= {"exhausted_until"}
USAGE_FIELDS = {"minute_used", "minute_remaining", "minute_resets_at", "day_used", "day_remaining", "day_resets_at"}


def new_key(vt_emulator, per_minute: int = 4, per_day: int = 500) -> str:
    value = secrets.token_hex(32)
    vt_emulator.add_key(value, per_minute=per_minute, per_day=per_day)
    return value


def test_create_answers_as_seed_001(client, user, vt_emulator):
    value = new_key(vt_emulator)

    r = client.post(KEYS, json={"name": "My VirusTotal API Key", "key_value": value}, headers=user.headers)

    assert r.status_code == 201, r.json
    assert r.json["message"] == "API key created successfully"
    key = r.json["api_key"]
    assert set(key) == FIELDS
    assert uuid.UUID(key["id"])
    assert key["name"] == "My VirusTotal API Key"
    assert key["is_active"] is True
    assert key["is_verified"] is True
    assert key["last4"] == value[-4:]
    assert (key["per_minute"], key["per_day"]) == (4, 500)  # the public API's quota by default
    assert key["last_used_at"] is None and key["last_error"] is None
    assert datetime.fromisoformat(key["created_at"]) == datetime.fromisoformat(key["updated_at"])
    assert set(key["usage"]) == USAGE_FIELDS
    # The check with VirusTotal was one request of the key's own quota.
    assert (key["usage"]["minute_used"], key["usage"]["minute_remaining"]) == (1, 3)
    assert (key["usage"]["day_used"], key["usage"]["day_remaining"]) == (1, 499)
    assert vt_emulator.total(value) == 1
    assert value not in r.get_data(as_text=True)


def test_create_takes_a_premium_budget(client, user, vt_emulator):
    value = new_key(vt_emulator, per_minute=1000, per_day=100000)

    body = {"name": "premium", "key_value": value, "per_minute": 1000, "per_day": 100000}
    r = client.post(KEYS, json=body, headers=user.headers)

    assert r.status_code == 201, r.json
    assert (r.json["api_key"]["per_minute"], r.json["api_key"]["per_day"]) == (1000, 100000)
    assert r.json["api_key"]["usage"]["minute_remaining"] == 999


def test_list_answers_as_seed_001_with_only_the_callers_keys(client, make_user, add_key):
    alice, bob = make_user(), make_user()
    first = add_key(alice, name="first")
    second = add_key(alice, name="second")
    add_key(bob, name="bob's")

    r = client.get(KEYS, headers=alice.headers)

    assert r.status_code == 200
    assert list(r.json) == ["api_keys"]
    assert [k["id"] for k in r.json["api_keys"]] == [first["id"], second["id"]]
    assert all(set(k) == FIELDS for k in r.json["api_keys"])
    assert client.get(KEYS, headers=make_user().headers).json == {"api_keys": []}


def test_get_answers_as_seed_001(client, user, add_key):
    key = add_key(user, name="My VirusTotal API Key")

    r = client.get(f"/api/keys/{key['id']}", headers=user.headers)

    assert r.status_code == 200
    assert list(r.json) == ["api_key"]
    assert r.json["api_key"]["id"] == key["id"]
    assert r.json["api_key"]["name"] == "My VirusTotal API Key"


def test_update_answers_as_seed_001(client, user, add_key, vt_emulator):
    key = add_key(user)
    replacement = new_key(vt_emulator)

    r = client.put(
        f"/api/keys/{key['id']}",
        json={"name": "Updated API Key Name", "key_value": replacement, "is_active": False},
        headers=user.headers,
    )

    assert r.status_code == 200, r.json
    assert r.json["message"] == "API key updated successfully"
    updated = r.json["api_key"]
    assert (updated["id"], updated["name"], updated["is_active"]) == (key["id"], "Updated API Key Name", False)
    assert updated["last4"] == replacement[-4:]
    assert updated["is_verified"] is True
    assert updated["created_at"] == key["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(key["updated_at"])
    # A new key value is a new VirusTotal budget: its one request so far is the check.
    assert updated["usage"]["minute_used"] == 1
    assert vt_emulator.total(replacement) == 1
    assert replacement not in r.get_data(as_text=True)


def test_update_changes_only_what_is_given(client, user, add_key, vt_emulator):
    key = add_key(user, name="before")
    checks_before = vt_emulator.total(key["key_value"])

    r = client.put(f"/api/keys/{key['id']}", json={"per_minute": 2}, headers=user.headers)

    assert r.status_code == 200, r.json
    updated = r.json["api_key"]
    assert (updated["name"], updated["per_minute"], updated["last4"]) == ("before", 2, key["last4"])
    assert vt_emulator.total(key["key_value"]) == checks_before  # no new value, no new check


def test_update_with_the_same_value_does_not_check_again(client, user, add_key, vt_emulator):
    key = add_key(user)

    r = client.put(f"/api/keys/{key['id']}", json={"key_value": key["key_value"]}, headers=user.headers)

    assert r.status_code == 200, r.json
    assert vt_emulator.total(key["key_value"]) == 1


def test_update_without_data_is_400(client, user, add_key):
    key = add_key(user)

    r = client.put(f"/api/keys/{key['id']}", json={}, headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["message"] == "No update data provided"


@pytest.mark.parametrize("flag", ["false", "true", 0, 1, None])
def test_is_active_must_be_a_json_boolean(client, user, add_key, flag):
    key = add_key(user)

    r = client.put(f"/api/keys/{key['id']}", json={"is_active": flag}, headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["details"]["json"]["is_active"]
    assert client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]["is_active"] is True


def test_delete_answers_as_seed_001(client, user, add_key):
    key = add_key(user)

    r = client.delete(f"/api/keys/{key['id']}", headers=user.headers)

    assert r.status_code == 200
    assert r.json == {"message": "API key deleted successfully"}
    assert client.get(f"/api/keys/{key['id']}", headers=user.headers).status_code == 404
    assert client.get(KEYS, headers=user.headers).json == {"api_keys": []}


def test_validate_answers_as_seed_001(client, user, vt_emulator):
    value = new_key(vt_emulator)

    r = client.post("/api/keys/validate", json={"key_value": value}, headers=user.headers)

    assert r.status_code == 200
    assert r.json == {"valid": True, "message": "API key is valid"}
    assert client.get(KEYS, headers=user.headers).json == {"api_keys": []}  # nothing stored


def test_validate_says_invalid_for_a_key_virustotal_rejects(client, user, vt_emulator):
    r = client.post("/api/keys/validate", json={"key_value": secrets.token_hex(32)}, headers=user.headers)

    assert r.status_code == 200
    assert r.json == {"valid": False, "message": "VirusTotal rejected this API key"}


@pytest.mark.parametrize("body", [{}, {"key_value": ""}, {"key_value": "   "}])
def test_validate_without_a_key_is_400(client, user, body):
    r = client.post("/api/keys/validate", json=body, headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert "API key is required" in r.json["error"]["message"]


@pytest.mark.parametrize("value", ["abc", "has a space in the middle of it", "x" * 300])
def test_validate_says_invalid_for_a_value_that_cannot_be_a_key(client, user, value):
    # Seed 001 keeps 400 for a missing key; any other value gets its verdict.
    r = client.post("/api/keys/validate", json={"key_value": value}, headers=user.headers)

    assert r.status_code == 200, r.json
    assert r.json["valid"] is False
    assert "printable characters" in r.json["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"key_value": secrets.token_hex(32)},
        {"name": "no value"},
        {"name": "", "key_value": secrets.token_hex(32)},
        {"name": "short", "key_value": "abc"},
        {"name": "spaces", "key_value": "has a space in the middle of it"},
        {"name": "budget", "key_value": secrets.token_hex(32), "per_minute": 0},
        {"name": "unknown", "key_value": secrets.token_hex(32), "owner": "someone"},
    ],
)
def test_create_refuses_invalid_input_with_400(client, user, body):
    r = client.post(KEYS, json=body, headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert client.get(KEYS, headers=user.headers).json == {"api_keys": []}


def test_create_trims_pasted_whitespace(client, user, vt_emulator):
    value = new_key(vt_emulator)

    r = client.post(KEYS, json={"name": "  pasted ", "key_value": f" {value}\n"}, headers=user.headers)

    assert r.status_code == 201, r.json
    assert (r.json["api_key"]["name"], r.json["api_key"]["is_verified"]) == ("pasted", True)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_a_malformed_key_id_is_400(client, user, method):
    r = getattr(client, method)("/api/keys/not-a-uuid", json={"name": "x"}, headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_an_unknown_key_id_is_404(client, user, method):
    r = getattr(client, method)(f"/api/keys/{uuid.uuid4()}", json={"name": "x"}, headers=user.headers)

    assert r.status_code == 404
    assert r.json["error"]["message"] == "API key not found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", KEYS),
        ("post", KEYS),
        ("get", "/api/keys/00000000-0000-4000-8000-000000000000"),
        ("post", "/api/keys/validate"),
    ],
)
def test_every_endpoint_needs_a_token(client, method, path):
    r = getattr(client, method)(path, json={})

    assert r.status_code == 401
    assert "error" in r.json


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_another_users_key_answers_404_and_stays_untouched(client, make_user, add_key, method):
    owner, intruder = make_user(), make_user()
    key = add_key(owner, name="owner's")

    r = getattr(client, method)(f"/api/keys/{key['id']}", json={"name": "taken"}, headers=intruder.headers)

    assert r.status_code == 404
    assert r.json["error"]["message"] == "API key not found"
    mine = client.get(f"/api/keys/{key['id']}", headers=owner.headers)
    assert mine.status_code == 200
    assert mine.json["api_key"]["name"] == "owner's"


def test_an_admin_cannot_reach_another_users_key_either(client, make_user, make_admin, add_key):
    owner, admin = make_user(), make_admin()
    key = add_key(owner)

    assert client.get(f"/api/keys/{key['id']}", headers=admin.headers).status_code == 404
    assert client.get(KEYS, headers=admin.headers).json == {"api_keys": []}


def test_the_same_key_twice_for_one_user_is_409(client, user, add_key):
    key = add_key(user)

    r = client.post(KEYS, json={"name": "again", "key_value": key["key_value"]}, headers=user.headers)

    assert r.status_code == 409
    assert r.json["error"]["code"] == "CONFLICT"
    assert r.json["error"]["details"] == {"id": key["id"]}
    assert len(client.get(KEYS, headers=user.headers).json["api_keys"]) == 1


def test_changing_a_key_to_another_stored_value_is_409(client, user, add_key):
    first, second = add_key(user), add_key(user)

    r = client.put(f"/api/keys/{second['id']}", json={"key_value": first["key_value"]}, headers=user.headers)

    assert r.status_code == 409
    assert client.get(f"/api/keys/{second['id']}", headers=user.headers).json["api_key"]["last4"] == second["last4"]


def test_two_users_may_store_one_key_and_share_its_budget(client, make_user, add_key):
    alice, bob = make_user(), make_user()
    key = add_key(alice, per_minute=4)

    r = client.post(KEYS, json={"name": "team key", "key_value": key["key_value"]}, headers=bob.headers)

    assert r.status_code == 201, r.json
    # VirusTotal counts per key value: both checks came out of the one budget.
    assert r.json["api_key"]["usage"]["minute_used"] == 2
    alices = client.get(f"/api/keys/{key['id']}", headers=alice.headers).json["api_key"]
    assert alices["usage"]["minute_used"] == 2

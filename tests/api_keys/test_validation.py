"""What VirusTotal says about a key decides what is stored: rejected keys never are, keys that
cannot be checked are kept unverified until their first successful use."""

from __future__ import annotations

import secrets

from tests.api_keys.helpers import call_ip, closed_port_url
from tests.fixtures.app import count_rows

KEYS = "/api/keys/"


def create(client, user, value: str, **extra):
    return client.post(KEYS, json={"name": "key", "key_value": value, **extra}, headers=user.headers)


def test_a_key_virustotal_rejects_is_400_and_not_stored(app, client, user, vt_emulator):
    r = create(client, user, secrets.token_hex(32))

    assert r.status_code == 400
    assert r.json["error"]["code"] == "INVALID_API_KEY"
    assert r.json["error"]["message"] == "VirusTotal rejected this API key"
    with app.app_context():
        assert count_rows("api_keys") == 0


def test_a_rejected_new_value_leaves_the_stored_key_working(app, client, user, add_key):
    key = add_key(user, name="working")

    r = client.put(
        f"/api/keys/{key['id']}", json={"name": "renamed", "key_value": secrets.token_hex(32)}, headers=user.headers
    )

    assert r.status_code == 400
    assert r.json["error"]["code"] == "INVALID_API_KEY"
    stored = client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]
    assert (stored["name"], stored["last4"], stored["is_verified"]) == ("working", key["last4"], True)
    call_ip(app, user.id)


def test_a_key_checked_while_virustotal_is_unreachable_is_stored_unverified(
    app, client, user, vt_emulator, monkeypatch
):
    value = secrets.token_hex(32)
    vt_emulator.add_key(value)
    closed = closed_port_url()
    monkeypatch.setitem(app.config, "VT_API_URL", closed)
    host_and_port = closed.split("//")[1].split("/")[0]

    r = create(client, user, value)

    assert r.status_code == 201, r.json
    key = r.json["api_key"]
    assert key["is_verified"] is False
    assert key["last_error"] == f"Not verified: VirusTotal could not be reached (connection refused by {host_and_port})"
    # Nothing reached VirusTotal, so the check cost the key no token of its budget.
    assert client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]["usage"]["minute_used"] == 0
    assert vt_emulator.total(value) == 0

    # Its first answered call proves it.
    monkeypatch.undo()
    call_ip(app, user.id)
    key = client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]
    assert (key["is_verified"], key["last_error"]) == (True, None)
    assert key["last_used_at"] is not None


def test_a_transient_virustotal_error_stores_the_key_unverified(client, user, vt_emulator):
    value = secrets.token_hex(32)
    vt_emulator.add_key(value)
    vt_emulator.set_faults(transient_next=1)

    r = create(client, user, value)

    assert r.status_code == 201, r.json
    assert r.json["api_key"]["is_verified"] is False
    assert "TransientError" in r.json["api_key"]["last_error"]


def test_a_key_whose_quota_virustotal_says_is_spent_is_valid_and_paused(client, user, vt_emulator):
    value = secrets.token_hex(32)
    vt_emulator.add_key(value, per_minute=0)  # VirusTotal knows the key, but answers 429

    r = create(client, user, value)

    assert r.status_code == 201, r.json
    key = r.json["api_key"]
    assert key["is_verified"] is True
    assert key["exhausted_until"] is not None
    assert vt_emulator.statuses(value) == {429: 1}


def test_the_check_waits_its_turn_in_the_keys_budget(client, make_user, vt_emulator):
    alice, bob = make_user(), make_user()
    value = secrets.token_hex(32)
    vt_emulator.add_key(value, per_minute=1)
    assert create(client, alice, value, per_minute=1).json["api_key"]["is_verified"] is True

    # Bob stores the same key while its one request a minute is spent: no call is made.
    r = create(client, bob, value, per_minute=1)

    assert r.status_code == 201, r.json
    assert r.json["api_key"]["is_verified"] is False
    assert r.json["api_key"]["last_error"] == "Not verified: the key's VirusTotal quota is in use right now"
    assert vt_emulator.statuses(value) == {200: 1}

    r = client.post("/api/keys/validate", json={"key_value": value}, headers=bob.headers)
    assert r.status_code == 429
    assert r.json["error"]["code"] == "VT_QUOTA_EXHAUSTED"
    assert 0 < r.json["error"]["details"]["retry_after"] <= 61
    assert vt_emulator.statuses(value) == {200: 1}


def test_validate_while_virustotal_is_unreachable_is_502(app, client, user, monkeypatch):
    monkeypatch.setitem(app.config, "VT_API_URL", closed_port_url())

    r = client.post("/api/keys/validate", json={"key_value": secrets.token_hex(32)}, headers=user.headers)

    assert r.status_code == 502
    assert r.json["error"]["code"] == "PROVIDER_ERROR"
    assert "could not be reached" in r.json["error"]["message"]


def test_key_checks_are_rate_limited_per_user(app, client, make_user, vt_emulator, monkeypatch):
    monkeypatch.setitem(app.config, "KEY_CHECK_RATE_LIMIT", "3 per minute")
    user, other = make_user(), make_user()

    answers = [
        client.post("/api/keys/validate", json={"key_value": secrets.token_hex(32)}, headers=user.headers)
        for _ in range(4)
    ]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert vt_emulator.total() == 3
    r = client.post("/api/keys/validate", json={"key_value": secrets.token_hex(32)}, headers=other.headers)
    assert r.status_code == 200

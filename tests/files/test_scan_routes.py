"""Starting scans of stored files (POST /api/scan/file/{id}, /rescan) and following them
(GET /api/scan/{id}/status): the answers, the key rules and the isolation between users."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.files.helpers import rows, unique_text, upload

STARTS = {
    "scan": ("/api/scan/file/{}", "Scan initiated successfully"),
    "rescan": ("/api/scan/file/{}/rescan", "Rescan initiated successfully"),
}


@pytest.fixture
def stored(client, user) -> str:
    """A file of `user`, uploaded before any key existed, so no scan has started yet."""
    r = upload(client, user, unique_text(), "stored.txt")
    assert r.status_code == 201, r.json
    return r.json["id"]


def status_of(client, user, scan_id: str) -> dict:
    r = client.get(f"/api/scan/{scan_id}/status", headers=user.headers)
    assert r.status_code == 200, r.json
    return r.json


@pytest.mark.parametrize("kind", STARTS)
def test_start_answers_202_with_the_seed_body_and_the_scan_is_queued(app, client, user, add_key, stored, kind):
    add_key(user)
    path, message = STARTS[kind]

    r = client.post(path.format(stored), headers=user.headers)

    assert r.status_code == 202, r.json
    assert set(r.json) == {"message", "scan_id", "status"}
    assert r.json["message"] == message
    assert r.json["status"] == "scanning"
    status = status_of(client, user, r.json["scan_id"])
    assert status["scan_id"] == r.json["scan_id"]
    assert status["file_id"] == stored
    assert status["kind"] == kind
    assert status["status"] in ("pending", "scanning")
    assert status["stage"] == "queued"
    assert status["detection_ratio"] is None
    assert rows(app, "scans") == {"scans": 1}


@pytest.mark.parametrize("kind", STARTS)
@pytest.mark.parametrize("payload", [None, {}, {"never_upload": True}], ids=["no-body", "empty", "never-upload"])
def test_start_body_is_optional(client, user, add_key, stored, kind, payload):
    add_key(user)
    path, _ = STARTS[kind]

    r = client.post(path.format(stored), json=payload, headers=user.headers)

    assert r.status_code == 202, r.json


@pytest.mark.parametrize("kind", STARTS)
def test_start_may_name_one_of_your_active_keys(client, user, add_key, stored, kind):
    add_key(user, name="first")
    chosen = add_key(user, name="second")
    path, _ = STARTS[kind]

    r = client.post(path.format(stored), json={"api_key_id": chosen["id"]}, headers=user.headers)

    assert r.status_code == 202, r.json


@pytest.mark.parametrize("kind", STARTS)
def test_start_without_an_active_key_is_400_no_active_api_key(app, client, user, stored, kind):
    path, _ = STARTS[kind]

    r = client.post(path.format(stored), headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "NO_ACTIVE_API_KEY"
    assert rows(app, "scans") == {"scans": 0}


def test_start_when_every_key_is_inactive_is_400_no_active_api_key(app, client, user, add_key, stored):
    key = add_key(user)
    assert client.put(f"/api/keys/{key['id']}", json={"is_active": False}, headers=user.headers).status_code == 200

    r = client.post(f"/api/scan/file/{stored}", headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "NO_ACTIVE_API_KEY"
    assert rows(app, "scans") == {"scans": 0}


@pytest.mark.parametrize("kind", STARTS)
def test_start_naming_another_users_key_or_an_unknown_one_is_404(app, client, user, make_user, add_key, stored, kind):
    add_key(user)
    foreign = add_key(make_user())
    path, _ = STARTS[kind]

    for key_id in (foreign["id"], str(uuid.uuid4())):
        r = client.post(path.format(stored), json={"api_key_id": key_id}, headers=user.headers)
        assert r.status_code == 404, r.json
        assert r.json["error"]["code"] == "NOT_FOUND"
    assert rows(app, "scans") == {"scans": 0}


@pytest.mark.parametrize("kind", STARTS)
def test_start_naming_an_inactive_key_is_400(app, client, user, add_key, stored, kind):
    add_key(user, name="active")
    paused = add_key(user, name="paused")
    assert client.put(f"/api/keys/{paused['id']}", json={"is_active": False}, headers=user.headers).status_code == 200
    path, _ = STARTS[kind]

    r = client.post(path.format(stored), json={"api_key_id": paused["id"]}, headers=user.headers)

    assert r.status_code == 400
    assert "active" in r.json["error"]["message"].lower()
    assert rows(app, "scans") == {"scans": 0}


@pytest.mark.parametrize(
    "payload",
    [{"api_key_id": "key-1"}, {"api_key_id": 42}, {"never_upload": "sometimes"}, {"priority": "high"}],
    ids=["key-not-uuid", "key-not-string", "flag-not-boolean", "unknown-field"],
)
def test_start_with_a_bad_body_is_400(app, client, user, add_key, stored, payload):
    add_key(user)

    r = client.post(f"/api/scan/file/{stored}", json=payload, headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert rows(app, "scans") == {"scans": 0}


@pytest.mark.parametrize("kind", STARTS)
def test_start_on_a_bad_or_unknown_or_foreign_file_id(app, client, make_user, add_key, kind):
    owner, intruder = make_user(), make_user()
    add_key(intruder)
    file_id = upload(client, owner, unique_text()).json["id"]
    path, _ = STARTS[kind]

    malformed = client.post(path.format("12345"), headers=intruder.headers)
    unknown = client.post(path.format(uuid.uuid4()), headers=intruder.headers)
    foreign = client.post(path.format(file_id), headers=intruder.headers)

    assert malformed.status_code == 400
    assert malformed.json["error"]["code"] == "VALIDATION_ERROR"
    assert unknown.status_code == foreign.status_code == 404
    assert unknown.json["error"]["message"] == foreign.json["error"]["message"]
    assert rows(app, "scans") == {"scans": 0}


@pytest.mark.parametrize("kind", STARTS)
def test_an_admin_cannot_scan_another_users_private_file(app, client, user, make_admin, add_key, kind):
    # The owner keeps the file away from VirusTotal; an admin may read it, not send it there.
    file_id = upload(client, user, unique_text(), never_upload="true").json["id"]
    admin = make_admin()
    add_key(admin)
    path, _ = STARTS[kind]
    assert client.get(f"/api/files/{file_id}", headers=admin.headers).status_code == 200

    r = client.post(path.format(file_id), json={"never_upload": False}, headers=admin.headers)

    assert r.status_code == 403 and r.json["error"]["code"] == "AUTHORIZATION_ERROR"
    assert rows(app, "scans") == {"scans": 0}


def test_status_of_a_bad_unknown_or_foreign_scan_id(client, make_user, add_key):
    owner, intruder = make_user(), make_user()
    add_key(owner)
    scan_id = upload(client, owner, unique_text()).json["scan"]["scan_id"]

    malformed = client.get("/api/scan/not-a-uuid/status", headers=intruder.headers)
    unknown = client.get(f"/api/scan/{uuid.uuid4()}/status", headers=intruder.headers)
    foreign = client.get(f"/api/scan/{scan_id}/status", headers=intruder.headers)

    assert malformed.status_code == 400
    assert unknown.status_code == foreign.status_code == 404
    assert unknown.json["error"]["message"] == foreign.json["error"]["message"]
    assert client.get(f"/api/scan/{scan_id}/status", headers=owner.headers).status_code == 200


def test_scan_routes_need_a_token(client):
    some_id = uuid.uuid4()
    for r in (
        client.post(f"/api/scan/file/{some_id}"),
        client.post(f"/api/scan/file/{some_id}/rescan"),
        client.get(f"/api/scan/{some_id}/status"),
    ):
        assert r.status_code == 401


@pytest.mark.integration
def test_status_follows_the_scan_to_its_verdict(client, user, add_key, vt_emulator, worker):
    key = add_key(user)
    content = unique_text()
    vt_emulator.add_file(content, verdict="malicious")
    before = vt_emulator.counts(key["key_value"])  # adding the key checked it with VirusTotal

    scan_id = upload(client, user, content, "known.txt").json["scan"]["scan_id"]
    deadline = time.monotonic() + 60  # only stops a hung test; nothing here is a timing claim
    seen = [status_of(client, user, scan_id)]
    while seen[-1]["status"] in ("pending", "scanning"):
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.1)
        seen.append(status_of(client, user, scan_id))

    final = seen[-1]
    assert final["status"] == "completed", final
    assert final["stage"] == "done"
    malicious, judged = map(int, re.fullmatch(r"(\d+)/(\d+)", final["detection_ratio"]).groups())
    assert 0 < malicious <= judged
    assert final["scan_date"] is not None and final["completed_at"] is not None
    assert final["error"] is None
    # A file VirusTotal already knows costs one lookup and nothing else.
    spent = {k: n - before.get(k, 0) for k, n in vt_emulator.counts(key["key_value"]).items()}
    assert {k: n for k, n in spent.items() if n} == {"GET /files/{id}": 1}


@pytest.mark.parametrize("kind", STARTS)
def test_a_started_scan_is_in_the_history_at_once(client, user, add_key, stored, kind):
    add_key(user)
    upload(client, user, unique_text())  # an earlier scan, so the history page has something to cache
    before = client.get("/api/scan/results", headers=user.headers)
    assert len(before.json["scans"]) == 1, before.json
    assert len(client.get(f"/api/scan/file/{stored}", headers=user.headers).json) == 0
    path, _ = STARTS[kind]

    scan_id = client.post(path.format(stored), headers=user.headers).json["scan_id"]

    listed = [s["id"] for s in client.get("/api/scan/results", headers=user.headers).json["scans"]]
    assert scan_id in listed
    by_file = [s["id"] for s in client.get(f"/api/scan/file/{stored}", headers=user.headers).json]
    assert scan_id in by_file

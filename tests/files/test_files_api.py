"""GET /api/files/, GET and DELETE /api/files/{id}: each user sees and removes only their own."""

from __future__ import annotations

import uuid

import pytest

from tests.files.helpers import FILE_FIELDS, SEED_FILE_FIELDS, rows, unique_text, upload


def upload_many(client, user, n: int, prefix: str = "file") -> list[str]:
    ids = []
    for i in range(n):
        r = upload(client, user, unique_text(), f"{prefix}-{i}.txt")
        assert r.status_code == 201, r.json
        ids.append(r.json["id"])
    return ids


def test_list_has_only_your_files_newest_first(client, make_user):
    alice, bob = make_user(), make_user()
    alices = upload_many(client, alice, 3, "alice")
    upload_many(client, bob, 2, "bob")

    r = client.get("/api/files/", headers=alice.headers)

    assert r.status_code == 200
    assert [f["id"] for f in r.json] == alices[::-1]
    assert r.headers["X-Total-Count"] == "3"
    for listed in r.json:
        assert SEED_FILE_FIELDS <= set(listed) <= FILE_FIELDS


def test_list_is_empty_for_a_new_user(client, user):
    r = client.get("/api/files/", headers=user.headers)

    assert r.status_code == 200
    assert r.json == []
    assert r.headers["X-Total-Count"] == "0"


def test_list_pages_through_every_file_once(client, user):
    ids = upload_many(client, user, 5)[::-1]

    pages = []
    for page in (1, 2, 3, 4):
        r = client.get(f"/api/files/?page={page}&per_page=2", headers=user.headers)
        assert r.status_code == 200
        assert r.headers["X-Total-Count"] == "5"
        pages.append([f["id"] for f in r.json])

    assert pages == [ids[0:2], ids[2:4], ids[4:5], []]


@pytest.mark.parametrize(
    "query", ["page=0", "per_page=0", "per_page=100000", "page=two", "per_page=-1", "page=99999999999999999999"]
)
def test_list_refuses_bad_paging(client, user, query):
    r = client.get(f"/api/files/?{query}", headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"


def test_files_need_a_token(client):
    for r in (
        client.get("/api/files/"),
        client.get(f"/api/files/{uuid.uuid4()}"),
        client.delete(f"/api/files/{uuid.uuid4()}"),
    ):
        assert r.status_code == 401
        assert "error" in r.json


def test_get_file_returns_its_details(client, user):
    created = upload(client, user, unique_text(), "details.txt").json

    r = client.get(f"/api/files/{created['id']}", headers=user.headers)

    assert r.status_code == 200
    assert r.json == {k: v for k, v in created.items() if k != "scan"}


@pytest.mark.parametrize("method", ["get", "delete"])
def test_malformed_file_id_is_400(client, user, method):
    r = getattr(client, method)("/api/files/not-a-uuid", headers=user.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("method", ["get", "delete"])
def test_another_users_file_answers_exactly_like_a_missing_one(app, client, make_user, method):
    owner, intruder = make_user(), make_user()
    file_id = upload(client, owner, unique_text()).json["id"]

    theirs = getattr(client, method)(f"/api/files/{file_id}", headers=intruder.headers)
    missing = getattr(client, method)(f"/api/files/{uuid.uuid4()}", headers=intruder.headers)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json["error"]["code"] == missing.json["error"]["code"] == "NOT_FOUND"
    assert theirs.json["error"]["message"] == missing.json["error"]["message"]
    assert client.get(f"/api/files/{file_id}", headers=owner.headers).status_code == 200
    assert rows(app, "files") == {"files": 1}


def test_admin_may_read_any_users_file(client, user, make_admin):
    file_id = upload(client, user, unique_text()).json["id"]
    admin = make_admin()

    r = client.get(f"/api/files/{file_id}", headers=admin.headers)

    assert r.status_code == 200
    assert r.json["id"] == file_id


def test_admin_may_not_delete_another_users_file(app, client, user, make_admin):
    file_id = upload(client, user, unique_text()).json["id"]
    admin = make_admin()

    r = client.delete(f"/api/files/{file_id}", headers=admin.headers)

    assert r.status_code == 403 and r.json["error"]["code"] == "AUTHORIZATION_ERROR"
    assert client.get(f"/api/files/{file_id}", headers=user.headers).status_code == 200
    assert rows(app, "files") == {"files": 1}


def test_delete_answers_as_seed_001_and_the_file_is_gone(app, client, user):
    file_id = upload(client, user, unique_text()).json["id"]

    r = client.delete(f"/api/files/{file_id}", headers=user.headers)

    assert r.status_code == 200
    assert r.json == {"message": "File deleted successfully"}
    assert client.get(f"/api/files/{file_id}", headers=user.headers).status_code == 404
    assert client.delete(f"/api/files/{file_id}", headers=user.headers).status_code == 404
    assert client.get("/api/files/", headers=user.headers).json == []
    assert rows(app, "files") == {"files": 0}


def test_deleting_a_file_deletes_its_scans(app, client, user, add_key):
    add_key(user)
    created = upload(client, user, unique_text()).json
    scan_id = created["scan"]["scan_id"]
    assert client.post(f"/api/scan/file/{created['id']}/rescan", headers=user.headers).status_code == 202
    assert rows(app, "scans") == {"scans": 2}

    assert client.delete(f"/api/files/{created['id']}", headers=user.headers).status_code == 200

    assert rows(app, "files", "scans") == {"files": 0, "scans": 0}
    assert client.get(f"/api/scan/{scan_id}/status", headers=user.headers).status_code == 404

"""The stored bytes: one content-addressed blob per distinct content, owner-only, shared by
every File row with those bytes and removed with the last of them."""

from __future__ import annotations

import hashlib
import stat

from tests.files.helpers import blob_root, blobs_named, rows, unique_bytes, upload


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_blob_is_named_by_its_sha256_and_readable_only_by_the_service(app, client, user):
    content = unique_bytes(4096)
    sha256 = hashlib.sha256(content).hexdigest()

    r = upload(client, user, content, "../../quarterly report.pdf")

    assert r.status_code == 201, r.json
    [blob] = blobs_named(app, sha256)
    assert blob.read_bytes() == content
    assert mode(blob) == 0o600
    root = blob_root(app)
    assert root in blob.parents
    for directory in [root, *(p for p in blob.parents if root in p.parents)]:
        assert mode(directory) == 0o700, directory
    # The name the user gave is for display only; it never reaches the file system.
    assert not any("report" in p.name for p in root.parent.rglob("*"))


def test_two_users_with_the_same_bytes_share_one_blob_until_both_delete(app, client, make_user):
    alice, bob = make_user(), make_user()
    content = unique_bytes(2048)
    sha256 = hashlib.sha256(content).hexdigest()

    a = upload(client, alice, content, "a.bin")
    b = upload(client, bob, content, "b.bin")

    assert a.status_code == b.status_code == 201
    assert a.json["id"] != b.json["id"]
    assert a.json["hash_sha256"] == b.json["hash_sha256"] == sha256
    assert len(blobs_named(app, sha256)) == 1

    assert client.delete(f"/api/files/{a.json['id']}", headers=alice.headers).status_code == 200
    [blob] = blobs_named(app, sha256)
    assert blob.read_bytes() == content
    assert client.get(f"/api/files/{b.json['id']}", headers=bob.headers).status_code == 200

    assert client.delete(f"/api/files/{b.json['id']}", headers=bob.headers).status_code == 200
    assert blobs_named(app, sha256) == []
    assert rows(app, "files") == {"files": 0}


def test_one_user_uploading_the_same_bytes_twice_keeps_the_blob_until_both_rows_go(app, client, user):
    content = unique_bytes(1024)
    sha256 = hashlib.sha256(content).hexdigest()
    first = upload(client, user, content, "first.bin").json["id"]
    second = upload(client, user, content, "second.bin").json["id"]

    client.delete(f"/api/files/{first}", headers=user.headers)
    assert len(blobs_named(app, sha256)) == 1

    client.delete(f"/api/files/{second}", headers=user.headers)
    assert blobs_named(app, sha256) == []


def test_a_refused_upload_of_known_bytes_keeps_the_blob_others_use(app, client, make_user, add_key):
    owner, other = make_user(), make_user()
    content = unique_bytes(1024)
    sha256 = hashlib.sha256(content).hexdigest()
    kept = upload(client, owner, content)
    assert kept.status_code == 201
    add_key(other)
    foreign_key = add_key(owner)

    refused = upload(client, other, content, api_key_id=foreign_key["id"])

    assert refused.status_code == 404
    [blob] = blobs_named(app, sha256)
    assert blob.read_bytes() == content
    assert rows(app, "files") == {"files": 1}

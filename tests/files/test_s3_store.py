"""Blobs in an S3-compatible bucket (a real HTTP server): streamed in with a multipart upload
while hashed, content addressed, private, removed with their last owner, and streamed back out
without a local copy."""

from __future__ import annotations

import hashlib
import io

import pytest

from scanner.files.storage import MiB, S3BlobStore
from tests.files.helpers import body, part, post_raw, rows, unique_bytes, upload

PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


@pytest.fixture
def bucket(s3_store, s3_server):
    """What is in the test's bucket: {key: bytes} and the multipart uploads left open."""
    s3 = s3_server.client()
    name = s3_store["BLOB_STORE_URL"].removeprefix("s3://").split("/")[0]

    class Bucket:
        def objects(self) -> dict[str, bytes]:
            listed = s3.list_objects_v2(Bucket=name).get("Contents", [])
            return {o["Key"]: s3.get_object(Bucket=name, Key=o["Key"])["Body"].read() for o in listed}

        def open_uploads(self) -> list[str]:
            return [u["Key"] for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", [])]

        def public_grants(self, key: str) -> list[dict]:
            grants = s3.get_object_acl(Bucket=name, Key=key)["Grants"]
            return [g for g in grants if g["Grantee"].get("URI") in PUBLIC_GRANTEES]

    return Bucket()


@pytest.fixture
def small_parts(app, s3_store, monkeypatch):
    """Parts of the smallest size S3 allows, so a file of a few MiB takes several."""
    store = app.extensions["blob_store"]
    monkeypatch.setattr(store, "part_size", 5 * MiB)
    return store


def test_an_upload_is_stored_under_its_sha256_and_nowhere_else(client, user, bucket):
    content = unique_bytes(4096)
    sha256 = hashlib.sha256(content).hexdigest()

    r = upload(client, user, content, "../../quarterly report.pdf")

    assert r.status_code == 201, r.json
    assert r.json["hash_sha256"] == sha256
    assert bucket.objects() == {f"blobs/{sha256}": content}
    assert bucket.public_grants(f"blobs/{sha256}") == []


def test_a_file_of_several_parts_arrives_whole_with_the_right_hashes(client, user, bucket, small_parts):
    content = unique_bytes(12 * MiB + 123)

    r = post_raw(client, user, body(part("file", content, "big.bin")))

    assert r.status_code == 201, r.json
    assert r.json["hash_md5"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert r.json["hash_sha256"] == hashlib.sha256(content).hexdigest()
    assert bucket.objects() == {f"blobs/{r.json['hash_sha256']}": content}
    assert bucket.open_uploads() == []


def test_same_bytes_share_one_object_until_the_last_owner_deletes(client, make_user, bucket):
    alice, bob = make_user(), make_user()
    content = unique_bytes(2048)
    key = f"blobs/{hashlib.sha256(content).hexdigest()}"

    a = upload(client, alice, content, "a.bin").json["id"]
    b = upload(client, bob, content, "b.bin").json["id"]
    assert bucket.objects() == {key: content}

    assert client.delete(f"/api/files/{a}", headers=alice.headers).status_code == 200
    assert bucket.objects() == {key: content}

    assert client.delete(f"/api/files/{b}", headers=bob.headers).status_code == 200
    assert bucket.objects() == {}


def test_a_refused_upload_leaves_no_object_and_no_open_upload(app, client, user, bucket, small_parts, monkeypatch):
    # Refused after two parts are already in the bucket.
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 11 * MiB)

    r = post_raw(client, user, body(part("file", unique_bytes(12 * MiB), "big.bin")))

    assert r.status_code == 413
    assert bucket.objects() == {}
    assert bucket.open_uploads() == []
    assert rows(app, "files") == {"files": 0}


def test_a_body_cut_off_mid_file_leaves_nothing(client, user, bucket, small_parts):
    data = body(part("file", unique_bytes(12 * MiB), "big.bin"))
    environ = {"wsgi.input": io.BytesIO(data[: 11 * MiB]), "CONTENT_LENGTH": str(len(data))}

    r = client.post(
        "/api/files/upload",
        headers=user.headers,
        environ_overrides={**environ, "CONTENT_TYPE": "multipart/form-data; boundary=scanner-test-boundary-7c1f"},
    )

    assert r.status_code == 400
    assert bucket.objects() == {}
    assert bucket.open_uploads() == []


def test_a_blob_reads_back_as_a_seekable_stream(app, client, user, small_parts):
    content = unique_bytes(6 * MiB)
    sha256 = post_raw(client, user, body(part("file", content, "big.bin"))).json["hash_sha256"]

    with small_parts.open(sha256) as blob:
        assert blob.seek(0, 2) == len(content)
        blob.seek(0)
        first = b"".join(iter(lambda: blob.read(MiB), b""))
        blob.seek(len(content) - 10)
        tail = blob.read()

    assert first == content and tail == content[-10:]


def test_a_missing_blob_says_which_store_it_is_missing_from(s3_store):
    store = S3BlobStore(s3_store["BLOB_STORE_URL"])

    with pytest.raises(FileNotFoundError, match="s3://"), store.open("0" * 64):
        pass


@pytest.mark.parametrize("size", [4096, 12 * MiB], ids=["one-put", "multipart"])
def test_a_bucket_that_cannot_be_reached_is_a_503_and_keeps_no_row(app, client, user, small_parts, monkeypatch, size):
    monkeypatch.setattr(small_parts, "bucket", "no-such-bucket-here")

    r = post_raw(client, user, body(part("file", unique_bytes(size), "a.bin")))

    assert r.status_code == 503, r.json
    assert r.json["error"]["code"] == "BLOB_STORE_UNAVAILABLE" and r.headers["Retry-After"]
    assert rows(app, "files", "scans") == {"files": 0, "scans": 0}


def test_an_empty_file_is_refused_and_leaves_nothing(client, user, bucket):
    r = post_raw(client, user, body(part("file", b"", "empty.bin")))

    assert r.status_code == 400
    assert bucket.objects() == {}

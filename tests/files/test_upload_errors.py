"""Uploads that must be refused: each answer is the error envelope, and nothing is left behind:
no File or Scan row, no blob, no temporary file."""

from __future__ import annotations

import errno
import hashlib
import io

import pytest

from tests.assertions import assert_error
from tests.files.helpers import (
    MULTIPART,
    UPLOAD,
    blobs_named,
    body,
    part,
    post_raw,
    rows,
    temp_files,
    unique_bytes,
    unique_text,
    upload,
)

CONTENT = unique_text(32)


@pytest.fixture
def nothing_left_behind(app):
    """Checks, after the test's request, that no row, blob or temporary file appeared."""
    temps_before = temp_files(app)
    yield
    assert rows(app, "files", "scans") == {"files": 0, "scans": 0}
    assert temp_files(app) == temps_before
    assert blobs_named(app, hashlib.sha256(CONTENT).hexdigest()) == []


FILE = part("file", CONTENT, "sample.txt", "text/plain")
BAD_BODIES = {
    "no-file-part": (body(part("note", b"hello")), MULTIPART),
    "file-part-without-filename": (body(part("file", CONTENT)), MULTIPART),
    "file-under-another-name": (body(part("upload", CONTENT, "sample.txt")), MULTIPART),
    "empty-filename": (body(part("file", CONTENT, "")), MULTIPART),
    "filename-of-control-characters": (body(part("file", CONTENT, b"\x01\x02\x03")), MULTIPART),
    "empty-file": (body(part("file", b"", "empty.txt")), MULTIPART),
    "json": (b'{"file": "aGVsbG8="}', "application/json"),
    "urlencoded": (b"file=hello", "application/x-www-form-urlencoded"),
    "no-content-type": (body(FILE), ""),
    "multipart-without-boundary": (body(FILE), "multipart/form-data"),
    "not-multipart-at-all": (b"just some bytes that are not a form", MULTIPART),
    "no-closing-boundary": (body(FILE, close=False), MULTIPART),
    "cut-inside-the-file": (body(FILE)[: len(body(FILE)) // 2], MULTIPART),
    "part-without-content-disposition": (
        body(FILE).replace(b'Content-Disposition: form-data; name="file"; filename="sample.txt"', b"X-Other: 1"),
        MULTIPART,
    ),
    "never-upload-not-a-boolean": (body(part("never_upload", b"maybe"), FILE), MULTIPART),
    "never-upload-invalid-after-the-file": (body(FILE, part("never_upload", b"perhaps")), MULTIPART),
    "never-upload-as-a-digit": (body(part("never_upload", b"1"), FILE), MULTIPART),
    "never-upload-as-yes": (body(part("never_upload", b"yes"), FILE), MULTIPART),
    "api-key-id-not-a-uuid": (body(FILE, part("api_key_id", b"key-1")), MULTIPART),
}


@pytest.mark.parametrize(("data", "content_type"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_upload_is_400_and_leaves_nothing(client, user, nothing_left_behind, data, content_type):
    assert_error(post_raw(client, user, data, content_type), 400)


def test_missing_and_empty_file_answer_validation_errors_that_say_why(client, user, nothing_left_behind):
    missing = post_raw(client, user, body(part("note", b"hello")))
    empty = post_raw(client, user, body(part("file", b"", "empty.txt")))

    assert_error(missing, 400, "VALIDATION_ERROR")
    assert "file" in missing.json["error"]["message"].lower()
    assert_error(empty, 400, "VALIDATION_ERROR")
    assert "empty" in empty.json["error"]["message"].lower()


def test_file_over_the_upload_limit_is_413(app, client, user, monkeypatch, nothing_left_behind):
    # A limit above one read of the stream, so the refusal happens part-way through the file.
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 300_000)
    too_big = CONTENT + unique_bytes(300_001 - len(CONTENT))

    r = upload(client, user, too_big)

    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert "300000" in r.json["error"]["message"]


def test_file_of_exactly_the_upload_limit_is_accepted(app, client, user, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 300_000)
    content = unique_bytes(300_000)

    r = upload(client, user, content)

    assert r.status_code == 201, r.json
    assert r.json["file_size"] == 300_000


def test_body_over_the_request_limit_is_413_before_it_is_read(app, client, user, monkeypatch, nothing_left_behind):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 10_000)
    data = body(part("file", CONTENT + unique_bytes(20_000), "big.bin"))

    assert_error(post_raw(client, user, data), 413, "PAYLOAD_TOO_LARGE")


def test_client_that_disconnects_mid_upload_leaves_nothing(client, user, nothing_left_behind):
    data = body(part("file", CONTENT + unique_bytes(200_000), "big.bin"))
    sent = data[: len(data) // 2]

    # Content-Length promises the whole body and the stream ends half-way, as when a client goes
    # away. Set in the WSGI environ directly: the test client would measure the stream itself.
    environ = {"wsgi.input": io.BytesIO(sent), "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": MULTIPART}
    r = client.post(UPLOAD, headers=user.headers, environ_overrides=environ)

    assert r.status_code == 400


def test_upload_without_a_token_is_401_and_keeps_nothing(client, nothing_left_behind):
    r = client.post(UPLOAD, data=body(part("file", CONTENT, "a.txt")), headers={"Content-Type": MULTIPART})

    assert_error(r, 401)


def test_upload_naming_another_users_key_is_404_and_keeps_nothing(
    client, user, make_user, add_key, nothing_left_behind
):
    add_key(user)
    foreign = add_key(make_user())

    r = upload(client, user, CONTENT, api_key_id=foreign["id"])

    assert_error(r, 404)


def test_upload_naming_an_inactive_key_is_400_and_keeps_nothing(client, user, add_key, nothing_left_behind):
    add_key(user, name="active")
    inactive = add_key(user, name="paused")
    r = client.put(f"/api/keys/{inactive['id']}", json={"is_active": False}, headers=user.headers)
    assert r.status_code == 200, r.json

    assert_error(upload(client, user, CONTENT, api_key_id=inactive["id"]), 400)


def test_chunked_body_over_the_request_limit_is_413(app, client, user, monkeypatch, nothing_left_behind):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 100_000)
    data = body(part("file", CONTENT + unique_bytes(300_000), "big.bin"))
    environ = {"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True, "CONTENT_TYPE": MULTIPART}

    assert_error(client.post(UPLOAD, headers=user.headers, environ_overrides=environ), 413, "PAYLOAD_TOO_LARGE")


def test_a_disk_that_fills_up_mid_upload_is_an_error_answer_and_leaves_nothing(
    client, user, monkeypatch, nothing_left_behind
):
    from scanner.files.storage import LocalBlobStore

    new_temp = LocalBlobStore.new_temp

    def filling_up(store):
        writer = new_temp(store)
        write, written = writer.write, 0

        def write_until_full(data):
            nonlocal written
            written += len(data)
            if written > 2 * 1024 * 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(data)

        writer.write = write_until_full
        return writer

    monkeypatch.setattr(LocalBlobStore, "new_temp", filling_up)

    assert_error(upload(client, user, CONTENT + unique_bytes(5 * 1024 * 1024)), 500)

"""POST /api/files/upload: the answer a user gets (seed 001) and what is kept of the upload."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.files.helpers import (
    BOUNDARY,
    FILE_FIELDS,
    MULTIPART,
    SEED_FILE_FIELDS,
    UPLOAD,
    body,
    part,
    post_raw,
    rows,
    unique_bytes,
    unique_text,
    upload,
)
from tests.files.samples import PE, ZIP
from vt_emulator import EICAR

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def assert_hashes(answer: dict, content: bytes) -> None:
    assert answer["file_size"] == len(content)
    assert answer["hash_md5"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert answer["hash_sha1"] == hashlib.sha1(content, usedforsecurity=False).hexdigest()
    assert answer["hash_sha256"] == hashlib.sha256(content).hexdigest()


def test_upload_with_a_key_answers_as_seed_001_and_starts_a_scan(app, client, user, add_key):
    add_key(user)
    content = unique_text()
    sent_at = datetime.now(UTC)

    r = upload(client, user, content, "test_file.txt", "text/plain")

    assert r.status_code == 201, r.json
    answer = r.json
    assert SEED_FILE_FIELDS | {"scan"} <= set(answer) <= FILE_FIELDS | {"scan"}
    uuid.UUID(answer["id"])
    assert answer["filename"] == "test_file.txt"
    assert answer["mime_type"] == "text/plain"
    assert_hashes(answer, content)
    uploaded = datetime.fromisoformat(answer["upload_date"])
    assert uploaded.utcoffset() == timedelta(0)
    assert sent_at - timedelta(minutes=1) <= uploaded <= datetime.now(UTC) + timedelta(minutes=1)
    assert answer["scan"]["status"] == "scanning"
    assert answer["scan"]["message"] == "Scan initiated automatically"
    assert set(answer["scan"]) == {"scan_id", "status", "message"}

    status = client.get(f"/api/scan/{answer['scan']['scan_id']}/status", headers=user.headers)
    assert status.status_code == 200, status.json
    assert status.json["file_id"] == answer["id"]
    stored = client.get(f"/api/files/{answer['id']}", headers=user.headers)
    assert stored.status_code == 200
    assert stored.json == {k: v for k, v in answer.items() if k != "scan"}
    assert rows(app, "files", "scans") == {"files": 1, "scans": 1}


def test_upload_without_a_key_keeps_the_file_and_says_how_to_scan_it(app, client, user):
    content = unique_text()

    r = upload(client, user, content, "notes.txt")

    assert r.status_code == 201, r.json
    assert_hashes(r.json, content)
    scan = r.json["scan"]
    assert scan["status"] == "not_started"
    assert scan["scan_id"] is None
    assert "key" in scan["message"].lower()
    assert f"/api/scan/file/{r.json['id']}" in scan["message"]
    assert rows(app, "files", "scans") == {"files": 1, "scans": 0}
    assert client.get(f"/api/files/{r.json['id']}", headers=user.headers).status_code == 200


def test_hashes_cover_every_byte_of_a_file_larger_than_the_read_size(client, user):
    # Several megabytes with the boundary's own prefix inside, placed where a read may split it:
    # a parser that mistook it for the end of the part, or dropped bytes between reads, would
    # report another size and other hashes.
    near_boundary = b"\r\n--" + BOUNDARY[:-3].encode()
    content = b"".join(unique_bytes(65_521) + near_boundary for _ in range(50)) + b"tail"

    r = post_raw(client, user, body(part("file", content, "big.bin", "application/octet-stream")))

    assert r.status_code == 201, r.json
    assert_hashes(r.json, content)


@pytest.mark.parametrize(
    ("content", "claimed_name", "claimed_type", "detected"),
    [
        (EICAR, "holiday.png", "image/png", "text/plain"),
        (PDF, "report.txt", "text/plain", "application/pdf"),
        (PNG, "invoice.pdf", "application/pdf", "image/png"),
        (PE, "invoice.pdf", "application/pdf", "application/vnd.microsoft.portable-executable"),
        (ZIP, "photo.jpg", "image/jpeg", "application/zip"),
        (b"\x00\x01\x02\x03" + bytes(range(256)) * 4, "readme.txt", "text/plain", "application/octet-stream"),
    ],
    ids=["eicar", "pdf", "png", "pe", "zip", "binary"],
)
def test_mime_type_comes_from_the_content_not_from_the_client(
    client, user, content, claimed_name, claimed_type, detected
):
    r = upload(client, user, content, claimed_name, claimed_type)

    assert r.status_code == 201, r.json
    assert r.json["mime_type"] == detected
    assert r.json["filename"] == claimed_name


@pytest.mark.parametrize(
    "name",
    [
        "résumé final (2).pdf",
        "отчёт за год.txt",
        "报告 2024.txt",
        "name with  two spaces .txt",
        "reports/2024/q1 summary.txt",
        "../../etc/passwd",
    ],
)
def test_filename_is_kept_as_given_for_display(client, user, name):
    r = upload(client, user, unique_text(), name)

    assert r.status_code == 201, r.json
    assert r.json["filename"] == name
    assert client.get(f"/api/files/{r.json['id']}", headers=user.headers).json["filename"] == name


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"bad\x07na\x1bme\x7f.txt", "badname.txt"),
        (b"tab\there.txt", "tabhere.txt"),
        # U+202E RIGHT-TO-LEFT OVERRIDE would show "invoice.exe.txt" as "invoice.txt.exe" backwards.
        ("invoice\u202etxt.exe".encode(), "invoicetxt.exe"),
    ],
    ids=["c0-and-del", "tab", "bidi-override"],
)
def test_control_characters_are_stripped_from_the_filename(client, user, raw, shown):
    r = post_raw(client, user, body(part("file", unique_text(), raw, "text/plain")))

    assert r.status_code == 201, r.json
    assert r.json["filename"] == shown


def test_an_overlong_filename_is_shortened_not_refused(client, user):
    name = "a" * 300 + ".txt"

    r = upload(client, user, unique_text(), name)

    assert r.status_code == 201, r.json
    assert 0 < len(r.json["filename"]) <= 255
    assert name.startswith(r.json["filename"])


def test_never_upload_flag_is_kept_on_the_file(client, user):
    private = upload(client, user, unique_text(), "private.txt", never_upload="true")
    shared = upload(client, user, unique_text(), "shared.txt", never_upload="false")
    default = upload(client, user, unique_text(), "default.txt")

    assert private.status_code == shared.status_code == default.status_code == 201
    assert private.json["never_upload"] is True
    assert shared.json["never_upload"] is False
    assert default.json["never_upload"] is False
    listed = {f["filename"]: f["never_upload"] for f in client.get("/api/files/", headers=user.headers).json}
    assert listed == {"private.txt": True, "shared.txt": False, "default.txt": False}


def test_upload_may_name_the_key_its_scan_spends(app, client, user, add_key):
    add_key(user, name="first")
    chosen = add_key(user, name="second")

    r = upload(client, user, unique_text(), api_key_id=chosen["id"])

    assert r.status_code == 201, r.json
    assert r.json["scan"]["status"] == "scanning"
    with app.app_context():
        from scanner.extensions import db
        from scanner.scans.models import Scan

        assert str(db.session.get(Scan, uuid.UUID(r.json["scan"]["scan_id"])).api_key_id) == chosen["id"]
        db.session.remove()


def test_upload_sent_chunked_without_a_content_length_is_read_to_the_end(client, user):
    # Streaming clients (a generator body) send Transfer-Encoding: chunked; the server then marks
    # the input as terminated instead of giving a length.
    content = unique_bytes(700_000)
    environ = {
        "wsgi.input": io.BytesIO(body(part("file", content, "chunked.bin"))),
        "wsgi.input_terminated": True,
        "CONTENT_TYPE": MULTIPART,
    }

    r = client.post(UPLOAD, headers=user.headers, environ_overrides=environ)

    assert r.status_code == 201, r.json
    assert_hashes(r.json, content)


def test_upload_while_every_key_is_inactive_keeps_the_file_without_a_scan(app, client, user, add_key):
    key = add_key(user)
    assert client.put(f"/api/keys/{key['id']}", json={"is_active": False}, headers=user.headers).status_code == 200

    r = upload(client, user, unique_text())

    assert r.status_code == 201, r.json
    assert r.json["scan"]["status"] == "not_started"
    assert rows(app, "files", "scans") == {"files": 1, "scans": 0}

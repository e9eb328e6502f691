"""Building upload requests by hand, so a test controls every byte the server reads."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from urllib3 import encode_multipart_formdata
from werkzeug.test import TestResponse

from tests.fixtures.app import count_rows
from tests.fixtures.users import TestUser

UPLOAD = "/api/files/upload"
BOUNDARY = "scanner-test-boundary-7c1f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
SEED_FILE_FIELDS = {"id", "filename", "file_size", "mime_type", "hash_md5", "hash_sha1", "hash_sha256", "upload_date"}
# Beyond seed 001, a file also says whether it may ever be sent to VirusTotal.
FILE_FIELDS = SEED_FILE_FIELDS | {"never_upload"}


def unique_bytes(size: int = 256, prefix: bytes = b"") -> bytes:
    """Content no other test uploads, so its blob is this test's alone."""
    return prefix + os.urandom(max(0, size - len(prefix)))


def unique_text(words: int = 8) -> bytes:
    return (" ".join(os.urandom(4).hex() for _ in range(words)) + "\n").encode()


def part(name: str, data: bytes, filename: bytes | str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'.encode()
    if filename is not None:
        raw = filename.encode() if isinstance(filename, str) else filename
        disposition += b'; filename="' + raw + b'"'
    headers = [disposition]
    if content_type:
        headers.append(f"Content-Type: {content_type}".encode())
    return b"--" + BOUNDARY.encode() + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + data + b"\r\n"


def body(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (b"--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def post_raw(client: FlaskClient, user: TestUser, data: bytes, content_type: str = MULTIPART) -> TestResponse:
    return client.post(UPLOAD, data=data, headers={**user.headers, "Content-Type": content_type})


def upload(
    client: FlaskClient,
    user: TestUser,
    content: bytes,
    filename: str = "sample.bin",
    content_type: str = "application/octet-stream",
    **fields: str | bool,
) -> TestResponse:
    """The way a browser or `curl -F` sends a file; booleans go as `true` / `false`."""
    # Encoded here rather than by the test client, which spools big bodies to a file it never closes.
    data, multipart = encode_multipart_formdata(
        {
            "file": (filename, content, content_type),
            **{k: str(v).lower() if isinstance(v, bool) else v for k, v in fields.items()},
        }
    )
    return client.post(UPLOAD, data=data, headers=user.headers, content_type=multipart)


def uploaded(client: FlaskClient, user: TestUser, content: bytes, filename: str = "sample.bin", **fields) -> dict:
    """Upload, expect 201, return the answer."""
    response = upload(client, user, content, filename, **fields)
    assert response.status_code == 201, response.json
    return response.json


def rows(app: Flask, *tables: str) -> dict[str, int]:
    from scanner.extensions import db

    with app.app_context():
        counts = {table: count_rows(table) for table in tables}
        db.session.remove()
    return counts


def blob_root(app: Flask) -> Path:
    return Path(app.config["BLOB_DIR"])


def temp_files(app: Flask) -> set[str]:
    """Every file in the blob store that is not a finished, content-addressed blob."""
    root = blob_root(app)
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and len(p.name) != 64}


def blobs_named(app: Flask, sha256: str) -> list[Path]:
    root = blob_root(app)
    return [p for p in root.rglob(sha256) if p.is_file()] if root.exists() else []

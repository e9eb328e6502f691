"""Uploads through gunicorn, as deployed: the body is read from the connection's socket past
gunicorn's own reader (scanner/files/body.py), so what gunicorn still expects of the connection
must hold: every byte of the file arrives, a request behind the upload on the same connection is
answered, and so is one after an upload refused half-way."""

from __future__ import annotations

import hashlib
import os
import re
import socket

import requests

from tests.files.helpers import MULTIPART, UPLOAD, blobs_named, body, part, temp_files

SIZE = 3 * 1024 * 1024 + 12_345  # several of the reader's blocks, the last one partly filled


def test_a_file_of_several_blocks_arrives_whole_and_the_connection_serves_on(app, user, start_web):
    server = start_web()
    content = os.urandom(SIZE)
    session = requests.Session()

    r = session.post(
        f"{server.url}{UPLOAD}",
        data=body(part("file", content, "big.bin"), part("never_upload", b"true")),
        headers={**user.headers, "Content-Type": MULTIPART},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["file_size"] == SIZE
    assert answer["never_upload"] is True
    assert (answer["hash_md5"], answer["hash_sha1"], answer["hash_sha256"]) == (
        hashlib.md5(content, usedforsecurity=False).hexdigest(),
        hashlib.sha1(content, usedforsecurity=False).hexdigest(),
        hashlib.sha256(content).hexdigest(),
    )
    [blob] = blobs_named(app, answer["hash_sha256"])
    assert blob.read_bytes() == content

    again = session.get(f"{server.url}/api/files/{answer['id']}", headers=user.headers, timeout=30)
    assert again.status_code == 200
    assert again.json()["hash_sha256"] == answer["hash_sha256"]


def test_a_chunked_upload_through_gunicorn_is_read_to_the_end(user, start_web):
    # No Content-Length: gunicorn's own reader decodes the chunks, and the upload reads from it.
    server = start_web()
    content = os.urandom(SIZE)
    data = body(part("file", content, "chunked.bin"))

    r = requests.post(
        f"{server.url}{UPLOAD}",
        data=(data[i : i + 100_000] for i in range(0, len(data), 100_000)),
        headers={**user.headers, "Content-Type": MULTIPART},
        timeout=60,
    )

    assert r.status_code == 201, r.text
    assert r.json()["file_size"] == SIZE
    assert r.json()["hash_sha256"] == hashlib.sha256(content).hexdigest()


def test_a_request_sent_right_behind_an_upload_is_answered_too(user, start_web):
    server = start_web()
    data = body(part("file", os.urandom(5000), "small.bin"))
    upload = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: test\r\nAuthorization: {user.headers['Authorization']}\r\n"
        f"Content-Type: {MULTIPART}\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data
    after = b"GET /api/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(upload + after)  # one send: gunicorn reads the second request with the first
        answers = _read_to_the_end(sock)

    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answers)
    assert statuses == [b"201", b"200"], answers[:2000]


def test_after_an_upload_refused_half_way_the_connection_serves_on(app, user, start_web):
    server = start_web(MAX_UPLOAD_BYTES="1000000")
    temps_before = temp_files(app)
    content = os.urandom(2_500_000)
    session = requests.Session()

    refused = session.post(
        f"{server.url}{UPLOAD}",
        data=body(part("file", content, "big.bin")),
        headers={**user.headers, "Content-Type": MULTIPART},
        timeout=60,
    )
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert blobs_named(app, hashlib.sha256(content).hexdigest()) == []
    assert temp_files(app) == temps_before

    after = session.get(f"{server.url}/api/files/", headers=user.headers, timeout=30)
    assert after.status_code == 200
    assert after.json() == []


def _read_to_the_end(sock: socket.socket) -> bytes:
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)

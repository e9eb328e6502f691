"""Web and worker on different machines: each process has its own instance folder and blob
directory, nothing on disk is shared. Through the object store the scan completes; on the
local store the worker cannot find the file and the scan fails saying why, promptly."""

from __future__ import annotations

import hashlib
import os

import requests

from tests.files.helpers import uploaded

from .helpers import wait_for_scan


def machine(tmp_path, name: str) -> dict[str, str]:
    root = tmp_path / name
    return {"INSTANCE_DIR": str(root / "instance"), "BLOB_DIR": str(root / "blobs")}


def files_under(path: str) -> list[str]:
    return [os.path.join(d, f) for d, _, names in os.walk(path) for f in names]


def test_a_scan_completes_through_the_object_store(
    app, client, user, add_key, vt_emulator, s3_store, start_worker, tmp_path
):
    worker_machine = machine(tmp_path, "worker")
    start_worker(**worker_machine, **s3_store)
    key = add_key(user)
    content = os.urandom(300_000)  # VirusTotal has never seen it: the worker must upload it
    sha256 = hashlib.sha256(content).hexdigest()

    status = wait_for_scan(client, user, uploaded(client, user, content)["scan"]["scan_id"])

    assert status["status"] == "completed", status
    # VirusTotal got exactly these bytes, streamed from the bucket.
    known = requests.get(f"{vt_emulator.url}/files/{sha256}", headers={"x-apikey": key["key_value"]}, timeout=10)
    assert known.status_code == 200 and known.json()["data"]["attributes"]["sha256"] == sha256
    assert vt_emulator.counts(key["key_value"]).get("POST /files") == 1
    assert files_under(worker_machine["BLOB_DIR"]) == []  # no local copy on the worker's machine
    assert not any(sha256 in name for name in files_under(app.config["BLOB_DIR"]))  # nor on the web's


def test_on_the_local_store_the_scan_fails_saying_why(client, user, add_key, vt_emulator, start_worker, tmp_path):
    start_worker(**machine(tmp_path, "worker"))
    add_key(user)

    status = wait_for_scan(client, user, uploaded(client, user, os.urandom(4096))["scan"]["scan_id"], limit=60)

    assert status["status"] == "failed", status
    assert "BLOB_DIR" in status["error"] and "BLOB_STORE_URL" in status["error"]

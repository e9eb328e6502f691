"""A VirusTotal key never leaves in clear: not in a response, a log line or the database, and
the encryption keys can be rotated."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import select, text

from config import ProductionConfig
from scanner.api_keys import crypto
from scanner.api_keys.models import ApiKey
from scanner.errors import NoActiveApiKey
from scanner.extensions import db
from tests.api_keys.helpers import call_ip, closed_port_url
from tests.fixtures.app import TEST_ENCRYPTION_KEY, repo_root

KEYS = "/api/keys/"
# Settings the test harness exports that would point a fresh process away from its own instance folder.
_SERVICE_SETTINGS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "BLOB_DIR", "ENCRYPTION_KEYS")


def every_stored_value(flask_app) -> list[object]:
    """Every cell of every table, as a database dump would show them."""
    cells: list[object] = []
    with flask_app.app_context(), db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                cells.extend(row)
    return cells


def ciphertexts(flask_app) -> dict[uuid.UUID, bytes]:
    with flask_app.app_context():
        return {row.id: bytes(row.ciphertext) for row in db.session.execute(select(ApiKey.id, ApiKey.ciphertext))}


def test_the_key_is_never_in_a_response_or_a_log_line(app, client, user, vt_emulator, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    value, replacement, rejected, unreachable = (secrets.token_hex(32) for _ in range(4))
    for key in (value, replacement):
        vt_emulator.add_key(key, per_minute=100, per_day=1000)
    answers = []

    answers.append(client.post(KEYS, json={"name": "k", "key_value": value}, headers=user.headers))
    key_id = answers[-1].json["api_key"]["id"]
    answers.append(client.post(KEYS, json={"name": "k", "key_value": value}, headers=user.headers))  # 409
    answers.append(client.post(KEYS, json={"name": "bad", "key_value": rejected}, headers=user.headers))  # 400
    answers.append(client.post("/api/keys/validate", json={"key_value": value}, headers=user.headers))
    answers.append(client.post("/api/keys/validate", json={"key_value": rejected}, headers=user.headers))
    answers.append(client.put(f"/api/keys/{key_id}", json={"key_value": replacement}, headers=user.headers))
    answers.append(client.get(KEYS, headers=user.headers))
    answers.append(client.get(f"/api/keys/{key_id}", headers=user.headers))
    call_ip(app, user.id)
    vt_emulator.set_faults(error_next={"status": 401, "code": "WrongCredentialsError"})
    with pytest.raises(NoActiveApiKey):
        call_ip(app, user.id)
    monkeypatch.setitem(app.config, "VT_API_URL", closed_port_url())
    answers.append(client.post(KEYS, json={"name": "offline", "key_value": unreachable}, headers=user.headers))
    answers.append(client.post("/api/keys/validate", json={"key_value": unreachable}, headers=user.headers))

    assert [r.status_code for r in answers] == [201, 409, 400, 200, 200, 200, 200, 200, 201, 502]
    logged = "\n".join(
        f"{record.getMessage()} {record.exc_text or ''} {record.stack_info or ''}" for record in caplog.records
    )
    assert "API key" in logged  # the flows above were logged, just never with the key
    for secret in (value, replacement, rejected, unreachable):
        assert secret not in logged
        for answer in answers:
            assert secret not in answer.get_data(as_text=True)


def test_a_database_dump_never_shows_the_key(app, client, user, add_key):
    key = add_key(user)

    cells = every_stored_value(app)

    for cell in cells:
        assert key["key_value"] not in str(cell)
        if isinstance(cell, bytes | memoryview):
            assert key["key_value"].encode() not in bytes(cell)
    # Stored, though: encrypted with the configured key.
    with app.app_context():
        ciphertext = db.session.execute(text("SELECT ciphertext FROM api_keys")).scalar_one()
    assert Fernet(TEST_ENCRYPTION_KEY).decrypt(bytes(ciphertext)).decode() == key["key_value"]


def test_the_sqlite_files_never_hold_the_key(app, client, user, add_key):
    if app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0] != "sqlite":
        pytest.skip("reads SQLite's files")
    key = add_key(user)
    path = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))

    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            assert key["key_value"].encode() not in file.read_bytes()


def test_rotation_re_encrypts_every_key_with_the_newest(app, client, make_user, add_key, vt_emulator, monkeypatch):
    alice, bob = make_user(), make_user()
    keys = [add_key(alice), add_key(bob)]
    before = ciphertexts(app)
    newest = Fernet.generate_key().decode()

    # With only the new key the stored ones cannot be opened: rotation has real work to do.
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", newest)
    with pytest.raises(NoActiveApiKey):
        call_ip(app, alice.id)

    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", f"{newest},{TEST_ENCRYPTION_KEY}")
    result = app.test_cli_runner().invoke(args=["keys", "rotate-encryption"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 2 key(s)" in result.output

    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", newest)
    after = ciphertexts(app)
    assert set(after) == set(before)
    for key in keys:
        key_id = uuid.UUID(key["id"])
        assert after[key_id] != before[key_id]
        assert Fernet(newest).decrypt(after[key_id]).decode() == key["key_value"]
    call_ip(app, alice.id)
    call_ip(app, bob.id)
    assert vt_emulator.counts(keys[0]["key_value"]).get("GET /ip_addresses/{id}") == 2  # the check + this call
    assert vt_emulator.counts(keys[1]["key_value"]).get("GET /ip_addresses/{id}") == 2


def test_rotation_reports_a_key_no_configured_key_opens(app, client, user, add_key, monkeypatch):
    add_key(user)
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", Fernet.generate_key().decode())

    result = app.test_cli_runner().invoke(args=["keys", "rotate-encryption"])

    assert result.exit_code == 1
    assert "1 key(s) could not be decrypted" in result.output


def test_a_malformed_encryption_key_is_refused_without_echoing_it(tmp_path):
    flask_app = Flask("misconfigured")
    flask_app.config.update(INSTANCE_DIR=str(tmp_path), ENCRYPTION_KEYS="not-a-fernet-key")

    with pytest.raises(RuntimeError) as raised:
        crypto.keyring(flask_app)

    assert "not-a-fernet-key" not in str(raised.value)


def test_production_refuses_to_start_without_encryption_keys(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)

    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS"):
        ProductionConfig()


def test_production_refuses_malformed_encryption_keys_without_echoing_them(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()},not-a-fernet-key")

    with pytest.raises(RuntimeError, match="ENCRYPTION_KEYS") as raised:
        ProductionConfig()

    assert "not-a-fernet-key" not in str(raised.value)


def test_embedded_instance_folder_is_private_to_the_service(tmp_path):
    # It holds the SQLite database (password hashes, key ciphertexts, every user's history) and
    # the generated encryption key; other local accounts must not even list it.
    instance = tmp_path / "instance"
    instance.mkdir()
    os.chmod(instance, 0o755)  # noqa: S103  as an older version left it
    env = {k: v for k, v in os.environ.items() if k not in _SERVICE_SETTINGS}
    env |= {"INSTANCE_DIR": str(instance), "SCANNER_CONFIG": "development"}

    subprocess.run(
        [sys.executable, "-c", "from scanner import create_app; create_app()"],
        cwd=repo_root(),
        env=env,
        check=True,
        timeout=60,
    )

    assert stat.S_IMODE(instance.stat().st_mode) == 0o700


def test_an_error_answer_that_echoes_the_key_never_carries_it_further(client, user, vt_emulator, caplog):
    # A proxy's error page (or a misbehaving upstream) may quote the request's x-apikey header.
    caplog.set_level(logging.DEBUG)
    value = secrets.token_hex(32)
    vt_emulator.add_key(value, per_minute=100, per_day=1000)
    echo = f"upstream trouble; request headers: x-apikey: {value}"
    vt_emulator.set_faults(error_next={"status": 503, "code": "TransientError", "message": echo})

    stored = client.post(KEYS, json={"name": "k", "key_value": value}, headers=user.headers)  # check fails: 503
    vt_emulator.set_faults(error_next={"status": 400, "code": "BadRequestError", "message": echo})
    lookup = client.post("/api/check_ioc", json={"ioc": "8.8.8.8"}, headers=user.headers)  # refused: 400
    read_back = client.get(f"/api/lookup/{lookup.json['lookup_id']}", headers=user.headers)

    assert stored.status_code == 201 and stored.json["api_key"]["is_verified"] is False
    assert lookup.status_code == 200 and lookup.json["status"] == "failed"
    assert "[redacted]" in lookup.json["error"]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "upstream trouble" in logged  # the failed check was logged, without the key
    for seen in (
        logged,
        stored.get_data(as_text=True),
        lookup.get_data(as_text=True),
        read_back.get_data(as_text=True),
    ):
        assert value not in seen

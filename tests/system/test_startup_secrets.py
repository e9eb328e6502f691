"""No public secret ever signs a token or encrypts a key: embedded mode generates its secrets
once, every other mode refuses to start without them, each process with one line naming what
is missing."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import PUBLIC_SECRETS_SHA256, Config, ConfigError, ProductionConfig, instance_secret
from tests.fixtures.processes import ROOT, run_probe

# Every value that ever shipped as a default secret (`git log -p -S SECRET config.py`).
PUBLISHED_SECRETS = ["dev-only-secret-change-me-0123456789abcdef"]
SECRETS = ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEYS")
# Settings the test harness exports that would make a fresh process leave embedded mode.
SERVICES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "BLOB_DIR", "BLOB_STORE_URL", "SCANNER_CONFIG")
# A PostgreSQL nobody listens on: the settings are refused before any connection is tried.
UNREACHABLE_DATABASE = "postgresql://scanner@127.0.0.1:9/scanner"
BIN = Path(sys.executable).parent


@pytest.fixture
def embedded(monkeypatch, tmp_path) -> Path:
    for name in SECRETS + SERVICES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_DIR", str(tmp_path))
    return tmp_path


def bare_env(instance: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS + SERVICES}
    return {**env, "INSTANCE_DIR": str(instance), **settings}


def test_every_published_secret_is_on_the_refused_list():
    assert {hashlib.sha256(v.encode()).hexdigest() for v in PUBLISHED_SECRETS} <= PUBLIC_SECRETS_SHA256


def test_embedded_mode_generates_private_secrets_once_and_reuses_them(embedded):
    first, second = Config(), Config()

    assert first.SECRET_KEY == second.SECRET_KEY == first.JWT_SECRET_KEY
    assert first.ENCRYPTION_KEYS == second.ENCRYPTION_KEYS
    assert first.SECRET_KEY not in PUBLISHED_SECRETS and len(first.SECRET_KEY) >= 32
    Fernet(first.ENCRYPTION_KEYS)  # a usable key
    assert sorted(p.name for p in embedded.iterdir()) == ["encryption.key", "secret.key"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in embedded.iterdir())


def test_processes_starting_at_once_share_one_generated_secret(tmp_path):
    start = threading.Barrier(8)
    made: list[str] = []

    def start_process_like():
        start.wait()
        made.append(instance_secret(tmp_path, "secret.key", lambda: os.urandom(16).hex()))

    threads = [threading.Thread(target=start_process_like) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(made)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary files left


def test_a_token_signed_with_a_published_secret_is_refused(tmp_path):
    env = bare_env(tmp_path)
    result = run_probe("tests.system.published_secret_probe", *PUBLISHED_SECRETS, env=env, timeout=120)

    assert result["own"] == 200  # the claims are right: only the signature differs
    assert result["forged"] == dict.fromkeys(PUBLISHED_SECRETS, 401)


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_a_published_secret_is_refused_even_in_embedded_mode(embedded, monkeypatch, name):
    monkeypatch.setenv(name, PUBLISHED_SECRETS[0])

    with pytest.raises(ConfigError, match=f"{name} is a published value"):
        Config()


def test_a_shared_database_never_falls_back_to_generated_secrets(embedded, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_DATABASE)
    monkeypatch.setenv("ENCRYPTION_KEYS", Fernet.generate_key().decode())

    with pytest.raises(ConfigError) as refused:
        Config()

    assert "missing SECRET_KEY " in str(refused.value) and "ENCRYPTION_KEYS" not in str(refused.value)
    assert list(embedded.iterdir()) == []  # nothing generated to fall back on next time


def test_production_on_sqlite_still_wants_its_secrets(embedded):
    with pytest.raises(ConfigError, match="missing SECRET_KEY, ENCRYPTION_KEYS"):
        ProductionConfig()


PROCESSES = {
    "web": [str(BIN / "gunicorn"), "wsgi:app", "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0"],
    "worker": [str(BIN / "celery"), "-A", "worker", "worker"],
    "beat": [str(BIN / "celery"), "-A", "worker", "beat"],
    "release": [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
}


@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize(
    "settings",
    [{"DATABASE_URL": UNREACHABLE_DATABASE}, {"SCANNER_CONFIG": "production"}],
    ids=["postgresql", "production"],
)
def test_each_process_refuses_to_start_without_its_secrets(tmp_path, process, settings):
    started = subprocess.run(  # noqa: S603
        PROCESSES[process], cwd=ROOT, env=bare_env(tmp_path, **settings), capture_output=True, text=True, timeout=60
    )

    assert started.returncode != 0
    assert "Traceback" not in started.stderr
    refusal = [line for line in started.stderr.splitlines() if line.startswith("scanner cannot start:")]
    assert refusal == [
        "scanner cannot start: missing SECRET_KEY, ENCRYPTION_KEYS (secrets are generated only in embedded mode,"
        " on SQLite); see README, Deploying"
    ]
    assert list(tmp_path.iterdir()) == []  # no secret was generated for it either

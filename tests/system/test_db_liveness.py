"""A pooled PostgreSQL connection whose server end was closed (a restart, pg_terminate_backend, a
proxy's idle timeout) is found dead as it leaves the pool and replaced: the request that would have
used it answers as usual, without a ping sent on every checkout (scanner/db_liveness.py)."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text

from scanner.extensions import db
from tests.fixtures.app import database_is_postgres

pytestmark = pytest.mark.skipif(not database_is_postgres(), reason="PostgreSQL's pool: needs TEST_DATABASE_URL")


def _pooled_backend() -> int:
    """The server process of the one connection in the pool."""
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.05)


def test_a_request_after_its_pooled_connection_was_ended_answers_as_usual(app, client, user):
    with app.app_context():
        db.engine.dispose()  # from here the pool holds one connection, which the request reuses
        assert client.get("/api/keys/", headers=user.headers).status_code == 200
        ended = _pooled_backend()
        _terminate(ended)

        answer = client.get("/api/keys/", headers=user.headers)

        assert answer.status_code == 200, answer.text
        assert _pooled_backend() != ended

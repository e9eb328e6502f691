"""With Redis, a web process keeps trusting its check of a token or a user row for as long as
nothing is revoked and no user changes anywhere (the auth generation, README "Signed-in requests
and revocation"), and no longer: a change made by another process, or one whose copy in Redis was
lost, is seen within AUTH_CACHE_SECONDS."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy import update

from scanner.auth.models import TokenFamily
from scanner.db_types import utcnow
from scanner.extensions import db
from tests.assertions import assert_error
from tests.fixtures.app import repo_root

DELAY = 0.5

pytestmark = pytest.mark.usefixtures("redis_client")  # skipped without TEST_REDIS_URL


@pytest.fixture
def short_delay(app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_CACHE_SECONDS", DELAY)


def refused_within_delay(request, status: int) -> None:
    changed_at = time.monotonic()
    while (answer := request()).status_code == 200:
        assert time.monotonic() - changed_at <= DELAY + 0.5, "a change outlived the documented delay"
        time.sleep(0.05)
    assert answer.status_code == status


def test_a_role_taken_away_by_another_process_applies_within_the_delay(client, make_admin, short_delay, test_env):
    admin = make_admin()
    listing = lambda: client.get("/api/auth/users", headers=admin.headers)  # noqa: E731
    assert listing().status_code == 200
    time.sleep(DELAY * 2)
    assert listing().status_code == 200  # trusted past the delay: nothing changed anywhere

    demoted = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "users", "demote", admin.username],
        env=test_env,
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert demoted.returncode == 0, demoted.stderr

    refused_within_delay(listing, 403)


def test_a_logout_in_another_process_ends_a_token_trusted_for_long(client, user, short_delay, start_web):
    profile = lambda: client.get("/api/auth/profile", headers=user.headers)  # noqa: E731
    assert profile().status_code == 200
    time.sleep(DELAY * 2)
    assert profile().status_code == 200

    server = start_web(AUTH_CACHE_SECONDS=str(DELAY))
    assert requests.post(f"{server.url}/api/auth/logout", headers=user.headers, timeout=30).status_code == 200

    refused_within_delay(profile, 401)
    assert_error(profile(), 401, "TOKEN_REVOKED")


def test_a_revocation_redis_never_heard_of_applies_once_redis_is_emptied(
    client, user, claims, short_delay, redis_client, app_ctx
):
    """A session ended in the database while Redis could not be told (an outage), then Redis
    restarted empty: the generation it held is gone, so nothing remembered under it stands."""
    profile = lambda: client.get("/api/auth/profile", headers=user.headers)  # noqa: E731
    assert profile().status_code == 200

    family = claims(user.access_token)["family"]
    db.session.execute(update(TokenFamily).where(TokenFamily.id == family).values(revoked_at=utcnow()))
    db.session.commit()
    time.sleep(DELAY * 2)
    assert profile().status_code == 200  # nothing told this process or Redis: still trusted

    redis_client.flushdb()
    refused_within_delay(profile, 401)

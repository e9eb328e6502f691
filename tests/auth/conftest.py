"""Helpers for the account and session tests: row counts, envelopes, tokens made by hand."""

from __future__ import annotations

import itertools
import warnings
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning

from tests.fixtures.app import count_rows

AUTH_TABLES = ("users", "token_families", "refresh_tokens", "revoked_tokens", "login_failures")
_addresses = itertools.count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fresh_address() -> str:
    """A client address no other request of the run has used (lockout and limits count per address)."""
    n = next(_addresses)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


@pytest.fixture
def auth_rows(app_ctx):
    """Counts every auth table now; call the result later to get the counts again."""

    def counts() -> dict[str, int]:
        from scanner.extensions import db

        db.session.remove()
        return {table: count_rows(table) for table in AUTH_TABLES}

    return counts


@pytest.fixture
def unchanged(auth_rows):
    """`with unchanged(): ...` fails when the block changed the number of rows of any auth table
    (but those named in `besides`)."""
    from contextlib import contextmanager

    @contextmanager
    def check(besides: tuple[str, ...] = ()):
        before = auth_rows()
        yield
        after = auth_rows()
        assert {k: v for k, v in after.items() if k not in besides} == {
            k: v for k, v in before.items() if k not in besides
        }

    return check


@pytest.fixture
def login(client):
    def do(username: str, password: str, address: str | None = None):
        return client.post(
            "/api/auth/login",
            json={"username": username, "password": password},
            environ_base={"REMOTE_ADDR": address or fresh_address()},
        )

    return do


@pytest.fixture
def claims(app):
    """Verify and decode one of our tokens the way a careful client library would."""

    def decode(token: str) -> dict:
        return pyjwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])

    return decode


@pytest.fixture
def sign(app):
    """Make a token by hand from `claims`, signed with our key (or another), for abuse cases."""

    def make(claims: dict, key: str | None = None, algorithm: str = "HS256", **changes) -> str:
        body = {**claims, **changes}
        for name in [k for k, v in changes.items() if v is None]:
            body.pop(name)
        with warnings.catch_warnings():  # an attacker does not mind a short HS512 key
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return pyjwt.encode(body, key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)

    return make


def past(seconds: int = 60) -> int:
    return int((datetime.now(UTC) - timedelta(seconds=seconds)).timestamp())

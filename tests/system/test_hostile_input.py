"""No hostile input reaches a 500: every one is a 400 in the envelope, before any database sees it
(PostgreSQL refuses NUL in text, so run these with TEST_DATABASE_URL too)."""

from __future__ import annotations

import pytest

from tests.assertions import assert_error
from tests.auth.conftest import fresh_address
from tests.system.hostile import Case, cases, random_id

# Multipart uploads are read by the streaming upload reader, not the request parser; their
# filename is cleaned there (tests/files/test_upload_errors.py).
STREAMED = {"/api/files/upload", "/api/bulk"}


def _all_cases(client) -> list[Case]:
    spec = client.get("/api/openapi.json").json
    paths = {"key_id": random_id(), "file_id": random_id(), "scan_id": random_id(), "lookup_id": random_id()}
    paths |= {"job_id": random_id(), "user_id": random_id()}
    return [case for case in cases(spec, paths) if case.path not in STREAMED]


def test_every_documented_operation_has_hostile_cases(client):
    found = {(case.method, case.path) for case in _all_cases(client)}
    for operation in [
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/token"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/keys/"),
        ("POST", "/api/check_ioc"),
        ("GET", "/api/scan/results"),
        ("GET", "/api/scan/results/export"),
        ("GET", "/api/files/"),
    ]:
        assert operation in found
    assert len(_all_cases(client)) > 150


def test_hostile_input_is_refused_with_400_everywhere(client, app, monkeypatch, make_admin, unchanged_rows):
    monkeypatch.setitem(app.config, "KEY_CHECK_RATE_LIMIT", "1000 per minute")  # these never reach a check
    admin = make_admin()  # sees every route, admin-only ones included
    outcomes: dict[str, int] = {}
    with unchanged_rows():
        for case in _all_cases(client):
            headers = {"Authorization": admin.headers["Authorization"]}
            response = client.open(
                case.path,
                method=case.method,
                headers=headers,
                environ_base={"REMOTE_ADDR": fresh_address()},
                **case.kwargs,
            )
            outcomes[case.id] = response.status_code
            if response.status_code != 400:
                continue
            error = assert_error(response, 400, "VALIDATION_ERROR")
            if case.field:
                assert case.field in str(error["details"]), (case.id, error)

    wrong = {case: status for case, status in outcomes.items() if status != 400}
    print(f"hostile requests: {len(outcomes)}, answered 400: {len(outcomes) - len(wrong)}")  # noqa: T201
    assert wrong == {}


@pytest.fixture
def unchanged_rows(app_ctx):
    """Hostile requests write nothing: every table has the rows it had before."""
    from contextlib import contextmanager

    from scanner.extensions import db
    from tests.fixtures.app import count_rows

    @contextmanager
    def check():
        # Bookkeeping of requests themselves (sign-in attempts, request counts) is not user data.
        bookkeeping = {"login_failures", "request_counts", "counter_totals"}
        tables = [t.name for t in db.metadata.sorted_tables if t.name not in bookkeeping]
        before = {t: count_rows(t) for t in tables}
        yield
        db.session.remove()
        assert {t: count_rows(t) for t in tables} == before

    return check


@pytest.mark.parametrize(
    ("body", "refused_for"),
    [
        ("[" * 32 + "]" * 32, None),  # deep enough to be read, then refused by the schema
        ("[" * 33 + "]" * 33, "nesting is limited to 32 levels"),
        ('{"username": ' + "1" * 64 + "}", None),
        ('{"username": ' + "1" * 65 + "}", "numbers are limited to 64 characters"),
        ('{"username": Infinity}', "Infinity is not JSON"),
        ('{"username": "x"', "Invalid JSON body"),
    ],
)
def test_the_json_limits_say_what_was_refused(client, body, refused_for):
    r = client.post("/api/auth/login", data=body, content_type="application/json")

    error = assert_error(r, 400, "VALIDATION_ERROR")
    if refused_for:
        assert refused_for in error["message"]
    else:
        assert "Invalid JSON body" not in error["message"]

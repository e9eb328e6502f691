"""Roles: admins made only by the CLI, enforced by one decorator; the admin listing of accounts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.assertions import assert_error
from tests.auth.conftest import bearer

CREATE = ("users", "create-admin")
ROOT = ("--username", "root", "--email", "root@example.com")


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, input: str | None = None, env: dict | None = None):
        return runner.invoke(args=list(args), input=input, env=env)

    return run


def test_create_admin_with_a_password_option(cli, client, login, claims):
    result = cli(
        "users",
        "create-admin",
        "--username",
        "Root.Admin",
        "--email",
        "Root@Example.com",
        "--password",
        "Adm1n-Secret!",
    )

    assert result.exit_code == 0, result.output
    r = login("root.admin", "Adm1n-Secret!")
    assert r.status_code == 200
    assert r.json["user"] == {**r.json["user"], "username": "Root.Admin", "email": "root@example.com", "role": "admin"}
    assert claims(r.json["access_token"])["role"] == "admin"


def test_create_admin_prompts_for_the_password(cli, login):
    result = cli(
        "users",
        "create-admin",
        "--username",
        "root",
        "--email",
        "root@example.com",
        input="Adm1n-Secret!\nAdm1n-Secret!\n",
    )

    assert result.exit_code == 0, result.output
    assert "Adm1n-Secret!" not in result.output
    assert login("root", "Adm1n-Secret!").json["user"]["role"] == "admin"


def test_create_admin_reads_the_password_from_the_environment(cli, login):
    result = cli(
        "users",
        "create-admin",
        "--username",
        "root",
        "--email",
        "root@example.com",
        env={"ADMIN_PASSWORD": "Adm1n-Secret!"},
    )
    assert result.exit_code == 0, result.output
    assert login("root", "Adm1n-Secret!").status_code == 200


@pytest.mark.parametrize(
    "args",
    [
        ("--username", "root", "--email", "root@example.com", "--password", "weak"),
        ("--username", "r o o t", "--email", "root@example.com", "--password", "Adm1n-Secret!"),
        ("--username", "root", "--email", "not-an-email", "--password", "Adm1n-Secret!"),
        ("--username", "taken", "--email", "root@example.com", "--password", "Adm1n-Secret!"),
        ("--username", "root", "--email", "TAKEN@example.com", "--password", "Adm1n-Secret!"),
    ],
    ids=["weak password", "bad username", "bad email", "taken username", "taken email"],
)
def test_create_admin_refuses_what_registration_refuses(cli, make_user, unchanged, args):
    make_user("taken", email="taken@example.com")
    with unchanged():
        result = cli(*CREATE, *args)
    assert result.exit_code != 0
    assert "Error:" in result.output


def test_promote_and_demote(cli, client, make_user, login):
    user = make_user("Someone")
    assert_error(client.get("/api/auth/users", headers=user.headers), 403, "AUTHORIZATION_ERROR")

    assert cli("users", "promote", "SOMEONE").exit_code == 0
    # The role is read from the account on every request: the old token works as admin at once.
    assert client.get("/api/auth/users", headers=user.headers).status_code == 200
    assert login("someone", user.password).json["user"]["role"] == "admin"

    assert cli("users", "demote", "someone").exit_code == 0
    assert_error(client.get("/api/auth/users", headers=user.headers), 403)


def test_promoting_an_unknown_user_fails(cli, unchanged):
    with unchanged():
        result = cli("users", "promote", "nobody")
    assert result.exit_code != 0
    assert "nobody" in result.output


def test_make_admin_fixture_gives_an_admin_token(make_admin, claims, client):
    admin = make_admin()
    assert claims(admin.access_token)["role"] == "admin"
    assert client.get("/api/auth/users", headers=admin.headers).status_code == 200


def test_admins_list_accounts_page_by_page(client, make_admin, make_user):
    admin = make_admin("boss")
    others = [make_user(f"member{n}") for n in range(4)]

    first = client.get("/api/auth/users?per_page=2", headers=admin.headers)
    third = client.get("/api/auth/users?per_page=2&page=3", headers=admin.headers)
    past_end = client.get("/api/auth/users?per_page=2&page=9", headers=admin.headers)

    assert first.status_code == 200
    assert first.json["pagination"] == {"page": 1, "per_page": 2, "total_pages": 3, "total_items": 5}
    assert [u["username"] for u in first.json["users"]] == ["boss", "member0"]
    assert [u["username"] for u in third.json["users"]] == [others[3].username]
    assert past_end.json["users"] == []
    listed = first.json["users"][1]
    assert set(listed) == {"id", "username", "email", "role", "never_upload", "created_at"}
    assert "password" not in first.get_data(as_text=True)


def test_admins_filter_accounts_by_role(client, make_admin, make_user):
    admin = make_admin()
    make_user()
    r = client.get("/api/auth/users?role=admin", headers=admin.headers)
    assert [u["id"] for u in r.json["users"]] == [admin.id]
    assert r.json["pagination"]["total_items"] == 1


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "per_page=0", "per_page=101", "page=abc", "role=root", "sort=username", "page=1'--"]
)
def test_bad_listing_queries_are_refused(client, make_admin, query):
    admin = make_admin()
    assert_error(client.get(f"/api/auth/users?{query}", headers=admin.headers), 400, "VALIDATION_ERROR")


def test_listing_needs_a_token(client):
    assert_error(client.get("/api/auth/users"), 401)


def test_a_user_cannot_list_accounts(client, user):
    assert_error(client.get("/api/auth/users", headers=user.headers), 403, "AUTHORIZATION_ERROR")


def test_a_forged_admin_role_claim_grants_nothing(client, user, claims, sign):
    token = sign(claims(user.access_token), role="admin", key="not-our-key-0123456789abcdefghijklmnop")
    assert_error(client.get("/api/auth/users", headers=bearer(token)), 401)


def test_purge_expired_keeps_what_still_matters(cli, client, user, login, claims, app_ctx, auth_rows):
    from sqlalchemy import update

    from scanner.auth.models import RevokedToken, TokenFamily
    from scanner.db_types import utcnow
    from scanner.extensions import db

    old = login(user.username, user.password).json
    assert client.post("/api/auth/logout", headers=bearer(old["access_token"])).status_code == 200
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200
    live = login(user.username, user.password).json
    # Age the first session and its revoked access token past their expiry.
    old_access = claims(old["access_token"])
    long_ago = utcnow() - timedelta(days=30)
    family = uuid.UUID(old_access["family"])
    db.session.execute(update(TokenFamily).where(TokenFamily.id == family).values(expires_at=long_ago))
    db.session.execute(update(RevokedToken).where(RevokedToken.jti == old_access["jti"]).values(expires_at=long_ago))
    db.session.commit()
    before = auth_rows()

    result = cli("users", "purge-expired")

    assert result.exit_code == 0, result.output
    after = auth_rows()
    assert before["token_families"] - after["token_families"] == 1
    assert before["revoked_tokens"] - after["revoked_tokens"] == 1
    assert before["refresh_tokens"] - after["refresh_tokens"] == 1
    # The revoked but unexpired session stays revoked; the live one still works.
    assert_error(client.get("/api/auth/profile", headers=user.headers), 401)
    assert client.get("/api/auth/profile", headers=bearer(live["access_token"])).status_code == 200


def test_a_page_number_too_large_for_the_database_is_400(client, make_admin):
    admin = make_admin()

    r = client.get("/api/auth/users?page=99999999999999999999", headers=admin.headers)

    assert r.status_code == 400
    assert r.json["error"]["code"] == "VALIDATION_ERROR" and "page" in r.json["error"]["message"]

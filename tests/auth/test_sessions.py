"""Sessions: refresh-token rotation, reuse detection, logout and password changes end them."""

from __future__ import annotations

import uuid

from scanner.auth import token_cache
from tests.assertions import assert_error
from tests.auth.conftest import bearer


def refresh(client, token: str):
    return client.post("/api/auth/refresh", headers=bearer(token))


def second_session(login, user) -> dict:
    r = login(user.username, user.password)
    assert r.status_code == 200
    return r.json


def family_row(family_id: str):
    from scanner.auth.models import TokenFamily
    from scanner.extensions import db

    db.session.remove()
    return db.session.get(TokenFamily, uuid.UUID(family_id))


def test_each_refresh_rotates_both_tokens(client, user, claims):
    tokens = [user.refresh_token]
    for _ in range(3):
        r = refresh(client, tokens[-1])
        assert r.status_code == 200, r.json
        assert r.json["refresh_token"] not in tokens
        assert claims(r.json["refresh_token"])["family"] == claims(user.refresh_token)["family"]
        assert client.get("/api/auth/profile", headers=bearer(r.json["access_token"])).status_code == 200
        tokens.append(r.json["refresh_token"])


def test_reusing_a_rotated_refresh_token_ends_the_whole_session(client, user, login, claims, app_ctx):
    other = second_session(login, user)
    rotated = refresh(client, user.refresh_token).json

    # A thief replays the token the user already exchanged.
    assert_error(refresh(client, user.refresh_token), 401, "TOKEN_REUSED")

    # Everything born from that sign-in is dead: the newest refresh token and every access token.
    assert_error(refresh(client, rotated["refresh_token"]), 401, "TOKEN_REVOKED")
    for access in (user.access_token, rotated["access_token"]):
        assert_error(client.get("/api/auth/profile", headers=bearer(access)), 401, "TOKEN_REVOKED")
    assert family_row(claims(user.refresh_token)["family"]).revoked_reason == "refresh_token_reuse"

    # Another sign-in of the same account is another session and carries on.
    assert client.get("/api/auth/profile", headers=bearer(other["access_token"])).status_code == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_reuse_is_detected_even_when_the_thief_is_first(client, user):
    stolen = refresh(client, user.refresh_token).json  # the thief refreshes first
    assert_error(refresh(client, user.refresh_token), 401, "TOKEN_REUSED")  # then the user does
    assert_error(refresh(client, stolen["refresh_token"]), 401)
    assert_error(client.get("/api/auth/profile", headers=bearer(stolen["access_token"])), 401)


def test_logout_revokes_the_access_token_and_its_refresh_tokens(client, user, login, claims, app_ctx):
    from scanner.auth.models import RefreshToken, RevokedToken
    from scanner.extensions import db

    other = second_session(login, user)

    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200

    assert_error(client.get("/api/auth/profile", headers=user.headers), 401, "TOKEN_REVOKED")
    assert_error(refresh(client, user.refresh_token), 401, "TOKEN_REVOKED")
    access, family = claims(user.access_token), claims(user.refresh_token)["family"]
    db.session.remove()
    assert db.session.get(RevokedToken, access["jti"]) is not None
    assert family_row(family).revoked_reason == "logout"
    tokens = db.session.query(RefreshToken).filter_by(family_id=uuid.UUID(family)).all()
    assert tokens and all(t.revoked_at is not None for t in tokens)
    # Only that session ended.
    assert client.get("/api/auth/profile", headers=bearer(other["access_token"])).status_code == 200


def test_logout_after_refresh_ends_the_rotated_session_too(client, user):
    rotated = refresh(client, user.refresh_token).json
    assert client.post("/api/auth/logout", headers=bearer(rotated["access_token"])).status_code == 200
    assert_error(refresh(client, rotated["refresh_token"]), 401)
    assert_error(client.get("/api/auth/profile", headers=user.headers), 401)  # the older access token too


def test_a_password_change_ends_every_other_session(client, user, login):
    other = second_session(login, user)
    third = second_session(login, user)
    change = {"current_password": user.password, "new_password": "Brand-New-Pass-7"}

    r = client.put("/api/auth/profile", json=change, headers=user.headers)

    assert r.status_code == 200, r.json
    for session in (other, third):
        assert_error(client.get("/api/auth/profile", headers=bearer(session["access_token"])), 401, "TOKEN_REVOKED")
        assert_error(refresh(client, session["refresh_token"]), 401)
    # The session that changed it carries on, refresh included.
    assert client.get("/api/auth/profile", headers=user.headers).status_code == 200
    assert refresh(client, user.refresh_token).status_code == 200
    assert login(user.username, "Brand-New-Pass-7").status_code == 200


def test_changing_other_fields_keeps_other_sessions(client, user, login):
    other = second_session(login, user)
    assert client.put("/api/auth/profile", json={"never_upload": True}, headers=user.headers).status_code == 200
    assert client.get("/api/auth/profile", headers=bearer(other["access_token"])).status_code == 200


def test_revoked_token_gets_401_on_every_protected_endpoint(client, user, app):
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200
    routes = sorted(
        {
            (method, rule.rule)
            for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/") and "<" not in rule.rule
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
    )
    checked = []
    for method, path in routes:
        if client.open(path, method=method, json={}).status_code != 401:
            continue  # public: a token, revoked or not, is not what it looks at
        response = client.open(path, method=method, headers=user.headers, json={})
        assert_error(response, 401)
        checked.append(path)
    assert {"/api/auth/profile", "/api/auth/logout", "/api/auth/users"} <= set(checked)


def test_revocation_works_while_redis_is_down(client, user, login, app, monkeypatch):
    # Nothing listens on port 1: every Redis call fails and the database decides alone.
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    other = second_session(login, user)

    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200

    assert_error(client.get("/api/auth/profile", headers=user.headers), 401, "TOKEN_REVOKED")
    assert_error(refresh(client, user.refresh_token), 401)
    assert client.get("/api/auth/profile", headers=bearer(other["access_token"])).status_code == 200


def test_revocations_are_kept_in_redis_for_the_token_life(client, user, claims, redis_client, app):
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200
    access = claims(user.access_token)
    prefix = app.config["CACHE_KEY_PREFIX"] + "auth:"

    jti_ttl = redis_client.pttl(f"{prefix}jti:{access['jti']}")
    family_ttl = redis_client.pttl(f"{prefix}family:{access['family']}")

    assert 0 < jti_ttl <= 900 * 1000
    assert 900 * 1000 < family_ttl <= 7 * 86400 * 1000


def test_revocation_survives_a_redis_flush(client, user, login, claims, redis_client, app):
    other = second_session(login, user)
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200

    redis_client.flushdb()
    # As a web process that did not handle the logout sees it: nothing in its memory either.
    token_cache.clear()

    assert_error(client.get("/api/auth/profile", headers=user.headers), 401, "TOKEN_REVOKED")
    assert_error(refresh(client, user.refresh_token), 401, "TOKEN_REVOKED")
    assert client.get("/api/auth/profile", headers=bearer(other["access_token"])).status_code == 200
    # The database's answer was copied back, so the next replay is refused from Redis.
    prefix = app.config["CACHE_KEY_PREFIX"] + "auth:"
    assert redis_client.exists(f"{prefix}family:{claims(user.access_token)['family']}")

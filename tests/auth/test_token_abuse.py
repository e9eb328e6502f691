"""Tokens that must not work: missing, malformed, expired, forged, tampered, of the wrong kind."""

from __future__ import annotations

import base64
import json

import pytest

from tests.assertions import assert_error
from tests.auth.conftest import bearer, past


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def alg_none(claims: dict) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def tampered(token: str, **changes) -> str:
    """The payload changed, the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_b64({**claims, **changes})}.{signature}"


OTHER_KEY = "another-key-that-is-not-ours-0123456789abcdef"
NO_ONE = "00000000-0000-0000-0000-000000000000"

# Each builds the Authorization header from the user, the claims of their access token and `sign`.
BAD_ACCESS = {
    "no header": lambda u, c, sign: {},
    "empty bearer": lambda u, c, sign: {"Authorization": "Bearer "},
    "other scheme": lambda u, c, sign: {"Authorization": f"Token {u.access_token}"},
    "garbage": lambda u, c, sign: bearer("not.a.jwt"),
    "sql in token": lambda u, c, sign: bearer("' OR '1'='1"),
    "expired": lambda u, c, sign: bearer(sign(c, exp=past(), iat=past(1000), nbf=past(1000))),
    "signed with another key": lambda u, c, sign: bearer(sign(c, key=OTHER_KEY)),
    "alg none": lambda u, c, sign: bearer(alg_none(c)),
    "alg none, no dot": lambda u, c, sign: bearer(alg_none(c)[:-1]),
    "HS512 with our key": lambda u, c, sign: bearer(sign(c, algorithm="HS512")),
    "role raised in the payload": lambda u, c, sign: bearer(tampered(u.access_token, role="admin")),
    "subject changed in the payload": lambda u, c, sign: bearer(tampered(u.access_token, sub=NO_ONE)),
    "signature stripped": lambda u, c, sign: bearer(u.access_token.rsplit(".", 1)[0] + "."),
    "no family claim": lambda u, c, sign: bearer(sign(c, family=None)),
    "subject not a uuid, signed with our key": lambda u, c, sign: bearer(sign(c, sub="1 OR 1=1")),
    "another user's subject, signed with our key": lambda u, c, sign: bearer(sign(c, sub=NO_ONE)),
    "unknown family": lambda u, c, sign: bearer(sign(c, family=NO_ONE)),
    "family not a uuid": lambda u, c, sign: bearer(sign(c, family="x' OR 1=1 --")),
    "refresh token as access": lambda u, c, sign: bearer(u.refresh_token),
}


@pytest.mark.parametrize("case", BAD_ACCESS)
@pytest.mark.parametrize(
    "method,path,body",
    [
        ("get", "/api/auth/profile", None),
        ("put", "/api/auth/profile", {"never_upload": True}),
        ("post", "/api/auth/logout", None),
    ],
    ids=["profile", "update", "logout"],
)
def test_bad_access_tokens_get_401_and_change_nothing(client, user, claims, sign, unchanged, case, method, path, body):
    headers = BAD_ACCESS[case](user, claims(user.access_token), sign)
    with unchanged():
        response = getattr(client, method)(path, json=body, headers=headers)
        assert_error(response, 401)
    profile = client.get("/api/auth/profile", headers=user.headers).json["user"]
    assert profile["never_upload"] is False
    assert client.get("/api/auth/profile", headers=user.headers).status_code == 200  # the real token is fine


@pytest.mark.parametrize(
    "case",
    ["access token", "expired", "signed with another key", "alg none", "tampered family", "no family claim"],
)
def test_bad_refresh_tokens_get_401_and_change_nothing(client, user, claims, sign, unchanged, case):
    refresh = claims(user.refresh_token)
    token = {
        "access token": user.access_token,
        "expired": sign(refresh, exp=past(), iat=past(1000), nbf=past(1000)),
        "signed with another key": sign(refresh, key=OTHER_KEY),
        "alg none": alg_none(refresh),
        "tampered family": tampered(user.refresh_token, family=NO_ONE),
        "no family claim": sign(refresh, family=None),
    }[case]
    with unchanged():
        assert_error(client.post("/api/auth/refresh", headers=bearer(token)), 401)
    # None of these ended the real session.
    assert client.post("/api/auth/refresh", headers=bearer(user.refresh_token)).status_code == 200


def test_expired_token_says_so(client, user, claims, sign):
    token = sign(claims(user.access_token), exp=past(), iat=past(1000), nbf=past(1000))
    assert_error(client.get("/api/auth/profile", headers=bearer(token)), 401, "TOKEN_EXPIRED")


def test_a_token_is_refused_once_its_account_is_gone(client, user, app_ctx):
    import uuid

    from scanner.auth.models import User
    from scanner.extensions import db

    db.session.delete(db.session.get(User, uuid.UUID(user.id)))
    db.session.commit()
    assert_error(client.get("/api/auth/profile", headers=user.headers), 401)


def test_production_refuses_a_short_jwt_secret_set_on_its_own(monkeypatch):
    # A strong SECRET_KEY does not help when a separate, guessable key signs every token.
    import secrets

    from cryptography.fernet import Fernet

    from config import ProductionConfig

    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("JWT_SECRET_KEY", "changeme")

    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        ProductionConfig()

    monkeypatch.setenv("JWT_SECRET_KEY", secrets.token_hex(32))
    assert ProductionConfig().JWT_SECRET_KEY != "changeme"

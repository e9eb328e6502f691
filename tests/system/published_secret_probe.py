"""Run by test_startup_secrets in a process of its own, in embedded mode with no secret set:
signs in, then presents the same claims signed with each published secret. Prints the
statuses (JSON).

python -m tests.system.published_secret_probe SECRET...
"""

from __future__ import annotations

import json
import sys

import jwt as pyjwt

from scanner import create_app
from scanner.extensions import db


def main(published: list[str]) -> dict:
    app = create_app("development")
    with app.app_context():
        db.create_all()
    client = app.test_client()
    account = {"username": "analyst", "email": "analyst@example.com", "password": "Correct-Horse-42"}
    assert client.post("/api/auth/register", json=account).status_code == 201
    sign_in = {"username": account["username"], "password": account["password"]}
    token = client.post("/api/auth/login", json=sign_in).json["access_token"]
    claims = pyjwt.decode(token, options={"verify_signature": False})

    def profile(bearer: str) -> int:
        return client.get("/api/auth/profile", headers={"Authorization": f"Bearer {bearer}"}).status_code

    forged = {value: profile(pyjwt.encode(claims, value, algorithm="HS256")) for value in published}
    return {"own": profile(token), "forged": forged}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))

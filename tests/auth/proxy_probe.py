"""Run by test_lockout in a process of its own, with TRUSTED_PROXIES set in its environment:
builds the app on a fresh SQLite database, fails five sign-ins from one client behind the
router, then signs in from another client behind the same router. Prints the statuses (JSON).

python -m tests.auth.proxy_probe
"""

from __future__ import annotations

import json

from scanner import create_app
from scanner.extensions import db

ROUTER = "10.0.0.1"  # every request reaches the app from the router's address


def main() -> dict:
    app = create_app("testing")
    with app.app_context():
        db.create_all()
    client = app.test_client()

    def login(username: str, password: str, client_address: str) -> int:
        return client.post(
            "/api/auth/login",
            json={"username": username, "password": password},
            environ_base={"REMOTE_ADDR": ROUTER},
            headers={"X-Forwarded-For": client_address},
        ).status_code

    account = {"username": "analyst", "email": "analyst@example.com", "password": "Correct-Horse-42"}
    assert client.post("/api/auth/register", json=account).status_code == 201
    attacker = [login(f"guess{n}", "Wrong-Horse-42", "198.51.100.7") for n in range(6)]
    return {"attacker": attacker, "analyst": login("analyst", account["password"], "203.0.113.9")}


if __name__ == "__main__":
    print(json.dumps(main()))

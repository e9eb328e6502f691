"""How long a new user waits after `make run`: the migrations, then the Procfile's web, worker and
beat on embedded defaults in a fresh folder, then the first requests a user makes.

    .venv/bin/python bench/first_request.py [CHECKOUT ...]

Each CHECKOUT (default: this one) is started with its own .venv; the first one is the baseline
the others are compared with.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests
from service import print_table, running

ROOT = Path(__file__).resolve().parents[1]


def first_requests(checkout: Path) -> dict[str, float | str]:
    with running(checkout, VT_API_URL="http://127.0.0.1:9/api/v3") as service:
        answered = time.monotonic() - service.started
        figures: dict[str, float | str] = {
            "migrations, as make run applies them (s)": service.migrated,
            "first answer (s after start)": answered,
        }
        t = time.monotonic()
        creds = {"username": "bench", "email": "bench@example.com", "password": "Correct-Horse-42-bench"}
        requests.post(f"{service.api}/auth/register", json=creds, timeout=60).raise_for_status()
        figures["first register (s)"] = time.monotonic() - t
        t = time.monotonic()
        sign_in = {"username": "bench", "password": creds["password"]}
        login = requests.post(f"{service.api}/auth/login", json=sign_in, timeout=60)
        login.raise_for_status()
        figures["first login (s)"] = time.monotonic() - t
        figures["first user signed in (s after make run)"] = service.migrated + time.monotonic() - service.started
        while requests.get(f"{service.api}/health/ready", timeout=30).status_code != 200:
            if time.monotonic() - service.started > 120:
                break
            time.sleep(0.1)
        figures["ready: a worker answers (s after start)"] = time.monotonic() - service.started
    return figures


def main() -> int:
    checkouts = [Path(p).resolve() for p in sys.argv[1:]] or [ROOT]
    print_table([(c, first_requests(c)) for c in checkouts])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long a user waits to learn that VirusTotal cannot be reached, and what they are told: the
service with VT_API_URL on a host that does not resolve (as with no DNS or no internet), a key
added, a file uploaded, its status read until the scan fails.

    .venv/bin/python bench/unreachable.py [CHECKOUT ...]

Each CHECKOUT (default: this one) runs with its own .venv and default settings, at the same
time, so a slow baseline does not add to the others; the first is the baseline.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from service import print_table, running, sign_up

ROOT = Path(__file__).resolve().parents[1]
UNRESOLVABLE = "https://www.virustotal.invalid/api/v3"
LIMIT = float(os.environ.get("BENCH_LIMIT_SECONDS", "900"))


def until_failure(checkout: Path) -> dict[str, float | str]:
    with running(checkout, VT_API_URL=UNRESOLVABLE) as service:
        auth = sign_up(service.api)
        key = requests.post(
            f"{service.api}/keys/", json={"name": "k", "key_value": "a" * 64}, headers=auth, timeout=60
        ).json()["api_key"]
        upload = requests.post(
            f"{service.api}/files/upload", files={"file": ("x.txt", os.urandom(64))}, headers=auth, timeout=60
        )
        scan_id = upload.json()["scan"]["scan_id"]
        began, said, status = time.monotonic(), None, {}
        while time.monotonic() - began < LIMIT:
            status = requests.get(f"{service.api}/scan/{scan_id}/status", headers=auth, timeout=30).json()
            if status.get("error") and said is None:
                said = time.monotonic() - began, status["error"]
            if status["status"] in ("failed", "completed", "not_found"):
                break
            time.sleep(1)
        usage = requests.get(f"{service.api}/keys/{key['id']}", headers=auth, timeout=30).json()["api_key"]
        return {
            "first error shown (s after upload)": said[0] if said else float("nan"),
            "scan failed (s after upload)": time.monotonic() - began,
            "quota tokens spent today": float(usage["usage"]["day_used"]),
            "key's last_error": key["last_error"],
            "first error shown": said[1] if said else "",
            "final status": f"{status.get('status')}: {status.get('error')}",
        }


def main() -> int:
    checkouts = [Path(p).resolve() for p in sys.argv[1:]] or [ROOT]
    with ThreadPoolExecutor(len(checkouts)) as pool:
        results = list(pool.map(until_failure, checkouts))
    print_table(list(zip(checkouts, results, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

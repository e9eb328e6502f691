"""A worker-like process for test_selection: THREADS callers, each making one VirusTotal lookup for
USER_ID through the key selection and, told the quota is used up, waiting as long as it says.

Run as `python -m tests.api_keys.quota_callers USER_ID THREADS` with the test run's environment;
prints {"ok": n, "failed": [...]} as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

from scanner import create_app
from scanner.api_keys import selection
from scanner.auth.models import User
from scanner.errors import QuotaExhausted
from scanner.extensions import db

MAX_ATTEMPTS = 100


def main(user_id: str, threads: int) -> None:
    app = create_app()
    ok: list[int] = []
    failed: list[str] = []
    start = threading.Barrier(threads)

    def caller(n: int) -> None:
        start.wait()
        with app.app_context():
            user = db.session.get(User, uuid.UUID(user_id))
            for _ in range(MAX_ATTEMPTS):
                try:
                    selection.call(user, lambda client: client.get_ip(f"10.0.0.{n}"))
                except QuotaExhausted as exc:
                    time.sleep(exc.retry_after)
                except Exception as exc:  # reported to the test, which fails on it
                    failed.append(f"{type(exc).__name__}: {exc}")
                    return
                else:
                    ok.append(n)
                    return
            failed.append("no token within the attempts")

    workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"ok": len(ok), "failed": failed}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""Shared steps for pipeline tests: wait for a scan to settle."""

from __future__ import annotations

import time

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
TERMINAL = ("completed", "failed", "not_found")


def wait_for_scan(client, user, scan_id: str, limit: float = 90.0) -> dict:
    """Poll the status endpoint until the scan settles; the bound only stops a hung test."""
    deadline = time.monotonic() + limit
    while True:
        body = client.get(f"/api/scan/{scan_id}/status", headers=user.headers).json
        if body["status"] in TERMINAL:
            return body
        if time.monotonic() > deadline:
            keys = client.get("/api/keys/", headers=user.headers).json
            raise AssertionError(f"scan did not settle: {body}; keys: {keys}")
        time.sleep(0.1)

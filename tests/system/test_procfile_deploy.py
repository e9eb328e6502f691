"""The Procfile deploys: `release`, `web`, `worker` and `beat` started as the Procfile says, with
production settings, on PostgreSQL, Redis and an S3-compatible bucket, each process with a
disk of its own, scan a file end to end (scripts/procfile_check.py). Needs the services."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.processes import ROOT


def test_the_procfile_processes_scan_a_file_with_production_settings():
    database, redis = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if not (database and redis):
        pytest.skip("needs TEST_DATABASE_URL and TEST_REDIS_URL (the services pass)")
    check = [sys.executable, "scripts/procfile_check.py", "--database-url", database, "--redis-url", redis]

    ran = subprocess.run(check, cwd=ROOT, capture_output=True, text=True, timeout=360)  # noqa: S603

    assert ran.returncode == 0, ran.stderr[-6000:]
    assert "release: migrations applied" in ran.stdout
    assert "scan completed through the bucket" in ran.stdout

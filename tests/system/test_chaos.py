"""`make chaos` from pytest: `pytest -m chaos` (deselected otherwise; minutes long, PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from tests.fixtures.processes import ROOT

pytestmark = pytest.mark.chaos


def test_every_fault_leaves_every_scan_and_job_settled_without_a_500():
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        pytest.skip("chaos runs against PostgreSQL: needs TEST_DATABASE_URL")
    # A database of its own next to the test database: the run empties it.
    url = os.environ.get("CHAOS_DATABASE_URL") or urlparse(base)._replace(path=urlparse(base).path + "_chaos").geturl()
    run = subprocess.run(  # noqa: S603
        [sys.executable, "scripts/chaos.py"],
        cwd=ROOT,
        env={**os.environ, "CHAOS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]

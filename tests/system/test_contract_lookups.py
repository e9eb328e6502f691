"""schemathesis on indicator lookups, seed 000's reports and bulk jobs, as a user
(tests/system/contract.py)."""

from __future__ import annotations

from tests.system.contract import check_pass, served, vt_keys_file  # noqa: F401


def test_lookups_and_bulk_jobs(served, user, add_key, vt_keys_file, tmp_path):  # noqa: F811
    add_key(user)
    check_pass("lookups", served, tmp_path, vt_keys_file, user.access_token)

"""schemathesis on uploads, scans and their results, as a user (tests/system/contract.py)."""

from __future__ import annotations

from tests.system.contract import check_pass, served, vt_keys_file  # noqa: F401


def test_files_and_scans(served, user, add_key, vt_keys_file, tmp_path):  # noqa: F811
    add_key(user)
    check_pass("files", served, tmp_path, vt_keys_file, user.access_token)

"""schemathesis on accounts and keys (as a user), the admin's reports (as an admin), and every
operation without a token (tests/system/contract.py)."""

from __future__ import annotations

from tests.system.contract import PASSES, check_pass, served, vt_keys_file  # noqa: F401


def test_accounts_and_keys(served, user, vt_keys_file, tmp_path):  # noqa: F811
    check_pass("accounts", served, tmp_path, vt_keys_file, user.access_token)


def test_admin_reports(served, make_admin, vt_keys_file, tmp_path):  # noqa: F811
    check_pass("admin", served, tmp_path, vt_keys_file, make_admin().access_token)


def test_without_a_token(served, vt_keys_file, tmp_path):  # noqa: F811
    check_pass("anonymous", served, tmp_path, vt_keys_file)

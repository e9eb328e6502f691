"""Create an account, add a VirusTotal key and see its budget; rename, deactivate and delete it."""

from __future__ import annotations

import secrets

import pytest
import requests
from playwright.sync_api import Page, expect

from .conftest import screenshot

pytestmark = pytest.mark.browser


def test_register_then_add_rename_deactivate_and_delete_a_key(page: Page, live, vt_emulator):
    page.goto("/register")
    page.get_by_label("Username").fill("keyholder")
    page.get_by_label("Email").fill("keyholder@example.com")
    page.get_by_label("Password").fill("Correct-Horse-42")
    screenshot(page, "register")
    page.get_by_role("button", name="Create account and sign in").click()
    page.wait_for_url("**/keys")
    expect(page.get_by_text("Signed in as keyholder")).to_be_visible()
    expect(page.locator("#keys-empty")).to_be_visible()

    # A value VirusTotal does not know is refused, in words.
    page.get_by_label("Name").fill("team key")
    page.get_by_label("Key", exact=True).fill(secrets.token_hex(32))
    page.get_by_role("button", name="Add key").click()
    expect(page.locator("#notice")).to_have_attribute("data-kind", "error")
    expect(page.locator("#keys > li")).to_have_count(0)

    value = secrets.token_hex(32)
    vt_emulator.add_key(value, per_minute=4, per_day=500)
    page.get_by_label("Key", exact=True).fill(value)
    page.get_by_role("button", name="Check with VirusTotal without storing").click()
    expect(page.locator("#notice")).to_have_attribute("data-kind", "ok")
    page.get_by_role("button", name="Add key").click()
    key = page.locator("#keys > li")
    expect(key).to_have_count(1)
    expect(key).to_contain_text("team key")
    expect(key).to_contain_text(f"…{value[-4:]}")
    expect(key).to_contain_text("verified")
    expect(key).to_contain_text("of 4 used")
    expect(key).to_contain_text("of 500 used")
    screenshot(page, "keys")

    key.get_by_role("button", name="Rename").click()
    key.get_by_label("New name").fill("SOC shared key")
    key.get_by_role("button", name="Save").click()
    expect(key.locator(".name")).to_have_text("SOC shared key")

    key.get_by_role("button", name="Deactivate").click()
    expect(key.locator(".badge").first).to_have_text("inactive")
    expect(key.get_by_role("button", name="Activate")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    key.get_by_role("button", name="Delete").click()
    expect(page.locator("#keys > li")).to_have_count(0)

    # Signing out ends the session on the server: its token is refused, the pages ask to sign in.
    token = page.evaluate("JSON.parse(localStorage.getItem('scanner.session')).access_token")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin")
    refused = requests.get(f"{live.url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "TOKEN_REVOKED"
    page.goto("/keys")
    expect(page).to_have_url(f"{live.url}/signin?next=%2Fkeys")

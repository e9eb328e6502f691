"""Swagger UI at /api/docs in a real browser, with no way out to the internet: every asset from
the app, nothing refused by its Content-Security-Policy, the operations listed, and the Authorize
button's sign-in works for "Try it out"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import screenshot

pytestmark = pytest.mark.browser


def test_docs_list_the_operations_and_authorize_signs_in(page: Page, live, user):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/docs")

    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 40
    for path in ("/api/files/upload", "/api/scan/{scan_id}/results", "/api/keys/", "/api/check_ioc"):
        expect(page.locator(f'.opblock-summary-path[data-path="{path}"]').first).to_be_visible()
    assert all(url.startswith(live.url) for url in requested), "the page reached outside the app"
    screenshot(page, "api-docs")

    # Authorize: the OAuth2 password form, which signs in through POST /api/auth/token.
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".dialog-ux")
    oauth = dialog.locator(".auth-container").filter(has_text="oauth2")
    oauth.locator("#oauth_username").fill(user.username)
    oauth.locator("#oauth_password").fill(user.password)
    oauth.locator("button.authorize").click()
    expect(oauth.get_by_role("heading", name="Authorized")).to_be_visible()
    expect(oauth.get_by_role("button", name="Remove authorization")).to_be_visible()
    oauth.get_by_role("button", name="Close").click()

    # Try it out on an operation that needs the token.
    me = page.locator(".opblock-get").filter(has=page.locator('.opblock-summary-path[data-path="/api/auth/me"]'))
    me.locator(".opblock-summary").click()
    me.get_by_role("button", name="Try it out").click()
    me.get_by_role("button", name="Execute").click()
    status = me.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text(re.compile(r"^\s*200"))
    expect(me.locator(".live-responses-table .microlight").first).to_contain_text(user.username)

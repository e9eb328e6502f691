"""Admin: the operations pages and the users, for an admin; on a phone, the pages fold to one column."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import PHONE, open_page, screenshot, sign_in

pytestmark = pytest.mark.browser

# Elements reaching past the right edge of the screen, named by tag, id and class.
WIDER_THAN_THE_SCREEN = """
[...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`)
"""


def test_an_admin_sees_health_users_and_the_audit_trail(page: Page, live, make_admin, user):
    admin = make_admin("chief")
    sign_in(page, admin.username, admin.password)
    page.get_by_role("link", name="Admin").click()
    expect(page.locator("#health [data-component=database] .badge")).to_have_text("healthy")
    users = page.locator("#users tbody tr th")
    expect(users).to_have_count(2)
    assert set(users.all_inner_texts()) == {"chief", user.username}
    expect(page.locator("#audit tbody")).to_contain_text("auth.login")
    page.get_by_label("Action").select_option("auth.register")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#audit tbody tr")).to_have_count(2)
    expect(page.locator("#performance")).to_contain_text("Process memory")
    screenshot(page, "admin")


def test_a_user_sees_no_admin_link_and_the_pages_fit_a_phone(browser, live, user):
    phone = open_page(browser, live, PHONE)
    phone.goto("/signin")
    phone.get_by_label("Username or email").fill(user.username)
    phone.get_by_label("Password").fill("not the password")
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.locator("#notice")).to_contain_text("Invalid username or password")
    screenshot(phone, "signin-phone")
    sign_in(phone, user.username, user.password)
    expect(phone.get_by_role("link", name="Admin")).to_be_hidden()
    wide = phone.evaluate(WIDER_THAN_THE_SCREEN)
    assert wide == [], "the page scrolls sideways on a phone"
    screenshot(phone, "files-phone")
    phone.goto("/admin")
    expect(phone.locator("#not-admin")).to_be_visible()
    phone.context.close()
    assert live.problems == []

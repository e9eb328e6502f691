"""History: filter the scans, and the filtered view is an address that opens the same view."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.files.helpers import uploaded
from tests.scans.helpers import EICAR, wait_for_scan

from .conftest import open_page, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_filter_the_history_and_share_the_view(page: Page, browser, live, client, user, add_key):
    add_key(user)
    names = ["eicar.com", "report-q3.txt", "notes.txt"]
    contents = [EICAR, b"quarterly figures, nothing to see\n", b"plain notes\n"]
    scans = [
        uploaded(client, user, content, name)["scan"]["scan_id"] for name, content in zip(names, contents, strict=True)
    ]
    for scan_id in scans:
        wait_for_scan(client, user, scan_id)

    sign_in(page, user.username, user.password)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    table = page.locator("#history tbody tr")
    expect(table).to_have_count(3)
    expect(page.locator("#summary")).to_have_text("3 scans match.")

    page.get_by_label("malicious").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(f"{live.url}/history?verdict=malicious&sort_by=scan_date&sort_order=desc&per_page=10")
    expect(table).to_have_count(1)
    expect(table.first.get_by_role("link")).to_have_text("eicar.com")
    expect(page.get_by_label("malicious")).to_be_checked()

    page.get_by_label("malicious").uncheck()
    page.get_by_label("File name contains").fill(".txt")
    page.get_by_role("button", name="Apply filters").click()
    expect(table).to_have_count(2)
    sort_by_name = page.get_by_role("button", name="File", exact=True)  # the column header
    sort_by_name.click()
    expect(page).to_have_url(f"{live.url}/history?filename=.txt&sort_by=filename&sort_order=desc&per_page=10")
    expect(table.locator("th")).to_have_text(["report-q3.txt", "notes.txt"])
    sort_by_name.click()
    expect(page.locator("#history th[data-sort=filename]")).to_have_attribute("aria-sort", "ascending")
    expect(table.locator("th")).to_have_text(["notes.txt", "report-q3.txt"])
    screenshot(page, "history")

    # The address is the view: another browser session opens the same rows.
    shared = page.url
    other = open_page(browser, live)
    sign_in(other, user.username, user.password)
    other.goto(shared)
    expect(other.locator("#history tbody tr th")).to_have_text(["notes.txt", "report-q3.txt"])
    expect(other.get_by_label("File name contains")).to_have_value(".txt")
    other.context.close()

    # A refused filter is said in words, from the API's envelope.
    page.get_by_label("Hash starts with").fill("xyz")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#notice")).to_contain_text("hash")

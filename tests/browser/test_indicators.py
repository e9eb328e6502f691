"""Indicators: one checked at once with its source and age, and a 10-line bulk job followed live
to its end, then exported."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import screenshot, settled, sign_in

pytestmark = pytest.mark.browser

TEN = [
    "example.com",
    "hxxp://malware-test[.]com/path",
    "8.8.8.8",
    "1.1.1.1",
    "2001:4860:4860::8888",
    "wikipedia.org",
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
    "44d88612fea8a8f36de82e1278abb02f",
    "https://www.example.org/login",
    "not an indicator",
]


def test_check_one_indicator_then_a_ten_line_bulk_job(page: Page, live, user, add_key, tmp_path):
    add_key(user)
    sign_in(page, user.username, user.password)
    page.get_by_role("link", name="Indicators").click()
    settled(page)

    box = page.get_by_label("Indicators, one a line")
    box.fill("8.8.8.8")
    page.get_by_role("button", name="Check").click()
    answer = page.locator("#single-card")
    expect(answer.locator("#single-status")).to_have_text("completed")
    expect(answer).to_contain_text("ipv4")
    expect(answer.locator("dd").nth(4)).to_have_text("VirusTotal")

    box.fill("\n".join(TEN))
    page.get_by_role("button", name="Check").click()
    expect(page).to_have_url(re.compile(r"/indicators\?job=[0-9a-f-]{36}$"))
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-status", "completed")
    expect(status).to_contain_text("9 of 9 answered")
    rows = page.locator("#job-results tbody tr")
    expect(rows).to_have_count(9)
    expect(page.locator("#job-notes")).to_contain_text("line 10")
    types = rows.locator("td:nth-child(3)").all_inner_texts()
    assert {"domain", "url", "ipv4", "ipv6", "sha256", "md5"} <= set(types)
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    screenshot(page, "indicators")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("line,ioc,ioc_type")
    assert len(lines) == 10

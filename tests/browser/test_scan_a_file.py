"""Sign in, upload the EICAR test file and watch its scan reach the verdict; then the report page:
the verdict, the engines' table (sorted and filtered), and the PDF export."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from vt_emulator import EICAR

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_sign_in_upload_eicar_watch_the_verdict_and_export_a_pdf(page: Page, live, user, add_key, tmp_path):
    add_key(user)
    page.goto("/files")
    expect(page).to_have_url(f"{live.url}/signin?next=%2Ffiles")
    sign_in(page, user.username, user.password)
    expect(page.get_by_label("Never upload")).not_to_be_checked()
    expect(page.get_by_label("Choose files to scan")).to_be_enabled()

    sample = tmp_path / "eicar.com"
    sample.write_bytes(EICAR)
    page.get_by_label("Choose files to scan").set_input_files(sample)
    upload = page.locator("#uploads > li").filter(has_text="eicar.com")
    expect(upload.locator(".stage-text")).to_have_attribute("data-status", "completed")
    expect(upload.locator(".badge")).to_have_text("malicious")
    screenshot(page, "files")

    upload.get_by_role("link", name="Open the report").click()
    expect(page.locator("#verdict-word")).to_have_text("malicious")
    ratio = page.locator("#detection-ratio").inner_text()
    detected, judged = (int(n) for n in ratio.split("/"))
    assert 0 < detected <= judged
    expect(page.locator("#counts [data-category=malicious] .n")).to_have_text(str(detected))

    # The table: every engine, then only those that detected it.
    rows = page.locator("#engines tbody tr")
    total = rows.count()
    assert total >= judged
    page.get_by_label("Category", exact=True).select_option("malicious")
    expect(rows).to_have_count(detected)
    expect(page.locator("#engine-count")).to_have_text(f"{detected} of {total} engines")
    engine_header = page.locator("#engines th[data-key=engine_name]")
    page.get_by_role("button", name="Engine").click()
    expect(engine_header).to_have_attribute("aria-sort", "ascending")
    names = rows.locator("th").all_inner_texts()
    assert names[0].casefold() < names[-1].casefold()
    page.get_by_role("button", name="Engine").click()
    expect(engine_header).to_have_attribute("aria-sort", "descending")
    assert rows.locator("th").all_inner_texts() == names[::-1]
    page.get_by_label("Category", exact=True).select_option("")
    screenshot(page, "scan-report")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export PDF").click()
    pdf = tmp_path / download.value.suggested_filename
    download.value.save_as(pdf)
    assert pdf.name.endswith(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")

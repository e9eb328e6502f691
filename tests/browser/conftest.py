"""Browser tests: Debian's chromium, driven by Playwright, against the app as deployed (gunicorn),
a real Celery worker and the VirusTotal emulator. Run with `make test-browser`; the default test
passes leave them out (every module here is marked `browser`), so they need no browser.

Every page a test visits must load without a console error: a script or style the
Content-Security-Policy refuses shows up there, and so does a script error."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.fixtures.app import repo_root
from tests.fixtures.worker import WorkerProcess
from tests.lookups.helpers import WebServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The screenshots the README links to; a run refreshes them.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or repo_root() / "docs" / "screenshots")
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Long enough for a scan through the worker and the emulator on a busy two-core machine.
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)
REFUSED = "Failed to load resource: the server responded with a status of 4"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Live:
    url: str
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def service(test_env, app, tmp_path_factory) -> Iterator[str]:
    """gunicorn and a worker, started once for every browser test: each test starts from empty
    tables (tests/fixtures/app.py) and its own emulator state, so they need no restart, and
    starting them takes longer than most of these tests."""
    logs = tmp_path_factory.mktemp("service")
    web = WebServer(logs, {})
    worker = WorkerProcess(app, logs, 2, {}, beat=False)
    try:
        web.wait_ready()
        worker.wait_ready()
        yield web.url
    finally:
        web.stop()
        worker.stop()


@pytest.fixture
def live(service, vt_emulator) -> Live:
    """The service as deployed: gunicorn, a worker, the emulator as VirusTotal."""
    return Live(service)


def _watch(page: Page, problems: list[str]) -> None:
    def on_console(message: ConsoleMessage) -> None:
        # The API's refusals (4xx) are answers the pages show; anything else is a fault.
        if message.type == "error" and not message.text.startswith(REFUSED):
            problems.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))


def open_page(browser: Browser, live: Live, viewport: dict[str, int] = LAPTOP) -> Page:
    context = browser.new_context(base_url=live.url, viewport=viewport, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    _watch(page, live.problems)
    return page


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    opened = open_page(browser, live)
    yield opened
    opened.context.close()
    assert live.problems == [], "the pages logged errors:\n" + "\n".join(live.problems)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def settled(page: Page) -> None:
    """The page's script has loaded what it shows and switched its controls on."""
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/signin")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/files")
    page.get_by_text(f"Signed in as {username}").wait_for()
    settled(page)

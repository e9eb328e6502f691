"""The web interface's pages as a browser receives them: served by the app with a policy that
refuses inline and foreign scripts and styles, and every asset they name served too (the pages
work with no way out to the internet). What the pages do is in tests/browser."""

from __future__ import annotations

import re

import pytest

from tests.assertions import assert_error

# A fixed id: parallel workers must collect the same test names.
PAGES = [
    "/signin",
    "/register",
    "/files",
    "/scans/3f1b0a52-8a4e-4c55-9d5e-2f0c7b1e6a10",
    "/history",
    "/indicators",
    "/keys",
    "/admin",
]
ASSET = re.compile(r'(?:src|href)="(/[^"]*)"')


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_served_under_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "http" not in policy
    html = response.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert " style=" not in html and "<style" not in html, "an inline style"
    assert 'lang="en"' in html and 'name="viewport"' in html


@pytest.mark.parametrize("path", PAGES)
def test_every_asset_a_page_names_is_served(client, path):
    html = client.get(path).get_data(as_text=True)
    assets = set(ASSET.findall(html))
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        with client.get(asset) as response:
            assert response.status_code == 200, asset


def test_home_leads_to_the_files_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/files")


def test_an_unknown_asset_is_a_404_in_the_envelope(client):
    assert_error(client.get("/ui/static/nothing-here.js"), 404)

"""Seed 000's two endpoints, as written: a thin adapter over the same lookups."""

from __future__ import annotations

import pytest

from .helpers import md5

GET, REFRESH = "/get_virustotal_report/", "/refresh_virustotal_report/"


def report(client, user, path: str, endpoint_type: str, value: str):
    body = {"endpoint_type": endpoint_type, "endpoint_value": value}
    return client.post(path, json=body, headers=user.headers)


def test_fetch_then_cached_then_refresh(client, user, add_key, vt_emulator):
    key = add_key(user)
    before = vt_emulator.total(key["key_value"])

    first = report(client, user, GET, "domain", "Google.com")
    second = report(client, user, GET, "domain", "google.com")
    refreshed = report(client, user, REFRESH, "domain", "google.com")

    assert first.status_code == 200, first.json
    assert {k: first.json[k] for k in ("endpoint_type", "endpoint_value", "cached")} == {
        "endpoint_type": "domain",
        "endpoint_value": "google.com",
        "cached": False,
    }
    assert first.json["report"]["type"] == "domain" and first.json["report"]["id"] == "google.com"
    assert second.json["cached"] is True and second.json["report"] == first.json["report"]
    assert refreshed.status_code == 200 and refreshed.json["cached"] is False
    assert vt_emulator.total(key["key_value"]) - before == 2


@pytest.mark.parametrize(
    ("endpoint_type", "value", "vt_type"), [("ip", "8.8.8.8", "ip_address"), ("domains", "example.com", "domain")]
)
def test_each_endpoint_type(client, user, add_key, endpoint_type, value, vt_type):
    add_key(user)
    response = report(client, user, GET, endpoint_type, value)
    assert response.status_code == 200
    assert response.json["report"]["type"] == vt_type


def test_file_takes_a_hash_and_url_a_url(client, user, add_key, vt_emulator):
    content = b"seed zero file\n"
    vt_emulator.add_file(content, verdict="eicar")
    vt_emulator.add_url("https://example.com/known")
    add_key(user)

    by_hash = report(client, user, GET, "file", md5(content))
    by_url = report(client, user, GET, "url", "https://example.com/known")
    unknown = report(client, user, GET, "file", "f" * 64)

    assert by_hash.status_code == 200 and by_hash.json["report"]["type"] == "file"
    assert by_url.status_code == 200 and by_url.json["report"]["type"] == "url"
    assert unknown.status_code == 404
    assert unknown.json["error"]["message"] == "VirusTotal has no report for this file"


@pytest.mark.parametrize(
    ("endpoint_type", "value", "message"),
    [
        ("file", "example.com", "This is a domain name, not an MD5, SHA-1 or SHA-256 hash"),
        ("ip", "example.com", "This is a domain name, not an IPv4 or IPv6 address"),
        ("domain", "10.0.0.1", "10.0.0.1 is a private address"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(client, user, endpoint_type, value, message):
    response = report(client, user, GET, endpoint_type, value)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "IOC_VALIDATION_ERROR"
    assert response.json["error"]["message"].startswith(message)


def test_contract_guards(client, user):
    assert report(client, user, GET, "email", "a@b.c").status_code == 400
    assert client.post(GET, json={"endpoint_type": "domain", "endpoint_value": "x.com"}).status_code == 401

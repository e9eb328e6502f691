"""The emulator over raw HTTP: quotas, keys, upload URLs, control endpoints and the CLI."""

from __future__ import annotations

import base64
import gzip
import secrets
import subprocess
import sys
import time

import pytest
import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder

from scanner.virustotal.reports import NETWORK_CATEGORIES, url_id
from tests.fixtures.processes import ROOT
from vt_emulator import EICAR, Emulator
from vt_emulator.objects import ContentDigest

MiB = 1024 * 1024


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def key(vt_emulator: Emulator) -> str:
    value = secrets.token_hex(32)
    vt_emulator.add_key(value, per_minute=1000, per_day=100000)
    return value


def call(http, emulator: Emulator, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["x-apikey"] = key
    target = path if path.startswith("http") else emulator.url + path
    return http.request(method, target, headers=headers, timeout=30, **kwargs)


def control(http, emulator: Emulator, method: str, path: str, **kwargs) -> requests.Response:
    root = emulator.url.removesuffix("/api/v3")
    return http.request(method, f"{root}/_emulator{path}", timeout=30, **kwargs)


def error_of(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


# -- keys and quotas ------------------------------------------------------------------------------


def test_missing_and_unknown_keys_are_401(vt_emulator, http):
    assert error_of(call(http, vt_emulator, "GET", "/ip_addresses/8.8.8.8")) == (401, "AuthenticationRequiredError")
    stranger = secrets.token_hex(32)
    assert error_of(call(http, vt_emulator, "GET", "/domains/example.com", stranger)) == (401, "WrongCredentialsError")
    assert vt_emulator.counts() == {"GET /ip_addresses/{id}": 1, "GET /domains/{id}": 1}
    assert vt_emulator.statuses(stranger) == {401: 1}


def test_per_minute_quota_is_a_sliding_window(vt_emulator, http):
    vt_emulator.configure(minute_seconds=2.0)
    key = secrets.token_hex(32)
    vt_emulator.add_key(key, per_minute=2, per_day=500)

    def ask() -> int:
        return call(http, vt_emulator, "GET", "/ip_addresses/1.1.1.1", key).status_code

    assert ask() == 200
    first = vt_emulator.log[-1].time
    wait_until(first + 1.0)
    assert ask() == 200
    assert ask() == 429  # two requests within the last 2 s
    wait_until(first + 2.05)
    assert ask() == 200  # the first request has left the window...
    assert ask() == 429  # ...but the second has not: a fixed window would have reset both
    response = call(http, vt_emulator, "GET", "/ip_addresses/1.1.1.1", key)
    assert error_of(response) == (429, "QuotaExceededError")
    assert vt_emulator.statuses(key) == {200: 3, 429: 3}


def test_per_day_quota(vt_emulator, http):
    to_midnight = 86400 - time.time() % 86400
    if to_midnight < 5:  # the daily window resets at 00:00 UTC; do not straddle it
        time.sleep(to_midnight + 0.1)
    key = secrets.token_hex(32)
    vt_emulator.add_key(key, per_minute=100, per_day=3)
    statuses = [call(http, vt_emulator, "GET", "/domains/example.org", key).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert vt_emulator.total(key, "GET /domains/{id}") == 5


def test_refused_requests_do_not_use_quota(vt_emulator, http):
    key = secrets.token_hex(32)
    vt_emulator.add_key(key, per_minute=1, per_day=500)
    vt_emulator.set_faults(transient_next=2)
    for _ in range(2):
        assert error_of(call(http, vt_emulator, "GET", "/ip_addresses/1.1.1.1", key)) == (503, "TransientError")
    assert call(http, vt_emulator, "GET", "/ip_addresses/1.1.1.1", key).status_code == 200
    assert call(http, vt_emulator, "GET", "/ip_addresses/1.1.1.1", key).status_code == 429


# -- uploads -----------------------------------------------------------------------------------


def test_upload_url_works_once(vt_emulator, http, key):
    upload_url = call(http, vt_emulator, "GET", "/files/upload_url", key).json()["data"]
    assert upload_url.startswith(vt_emulator.url.removesuffix("/api/v3") + "/_upload/")
    files = {"file": ("eicar.com", EICAR, "application/octet-stream")}
    assert error_of(call(http, vt_emulator, "POST", upload_url, files=files)) == (401, "AuthenticationRequiredError")
    first = call(http, vt_emulator, "POST", upload_url, key, files=files)
    assert first.status_code == 200
    assert first.json()["data"]["type"] == "analysis"
    assert error_of(call(http, vt_emulator, "POST", upload_url, key, files=files)) == (404, "NotFoundError")
    assert vt_emulator.counts(key) == {"GET /files/upload_url": 1, "POST /_upload": 2}


def test_post_files_refuses_bodies_over_32_mb(vt_emulator, http, key, tmp_path):
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        handle.truncate(33 * MiB)
    with path.open("rb") as stream:
        encoder = MultipartEncoder(fields={"file": ("big.bin", stream, "application/octet-stream")})
        response = call(
            http, vt_emulator, "POST", "/files", key, data=encoder, headers={"Content-Type": encoder.content_type}
        )
    assert error_of(response) == (413, "RequestEntityTooLargeError")
    assert vt_emulator.statuses(key) == {413: 1}


def test_upload_needs_a_file_part_with_a_plain_filename(vt_emulator, http, key):
    boundary = "emulator-test-boundary"
    body = (
        f"--{boundary}\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename*=utf-8''r%C3%A9sum%C3%A9.txt\r\n"
        "Content-Type: application/octet-stream\r\n\r\nhello\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert error_of(call(http, vt_emulator, "POST", "/files", key, data=body, headers=headers)) == (
        400,
        "BadRequestError",
    )
    assert error_of(call(http, vt_emulator, "POST", "/files", key, data={"other": "x"})) == (400, "BadRequestError")


def test_suspicious_marker_is_found_across_chunk_boundaries():
    digest = ContentDigest()
    for chunk in (b"x" * 70000 + b"SCANNER-TE", b"ST-SUSPI", b"CIOUS", b"y" * 10):
        digest.write(chunk)
    assert (digest.verdict(), digest.size) == ("suspicious", 70033)
    plain = ContentDigest()
    plain.write(b"SCANNER-TEST-")
    plain.write(b"-SUSPICIOUS")
    assert plain.verdict() == "clean"


def test_analyses_of_one_file_in_one_second_get_distinct_ids(vt_emulator, http, key):
    files = {"file": ("same.txt", b"same content", "text/plain")}
    ids = [call(http, vt_emulator, "POST", "/files", key, files=files).json()["data"]["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    decoded = [base64.b64decode(analysis_id).decode() for analysis_id in ids]
    md5 = decoded[0].split(":")[0]
    assert len(md5) == 32
    assert all(text.startswith(f"{md5}:") for text in decoded)
    assert (
        vt_emulator.add_file(b"same content")
        == call(http, vt_emulator, "GET", f"/analyses/{ids[0]}", key).json()["meta"]["file_info"]["sha256"]
    )


def test_unknown_analysis_and_route_are_not_found(vt_emulator, http, key):
    assert error_of(call(http, vt_emulator, "GET", "/analyses/bm9wZQ==", key)) == (404, "NotFoundError")
    assert error_of(call(http, vt_emulator, "GET", "/no/such/thing", key)) == (404, "NotFoundError")


# -- URLs, domains, IP addresses ----------------------------------------------------------------


def test_post_urls_accepts_urlencoded_and_multipart(vt_emulator, http, key):
    encoded = call(http, vt_emulator, "POST", "/urls", key, data={"url": "https://example.com/a"})
    multipart = call(http, vt_emulator, "POST", "/urls", key, files={"url": (None, "https://example.com/b")})
    for response in (encoded, multipart):
        assert response.status_code == 200
        assert response.json()["data"]["id"].startswith("u-")
    assert error_of(call(http, vt_emulator, "POST", "/urls", key, data={})) == (400, "BadRequestError")
    assert error_of(call(http, vt_emulator, "POST", "/urls", key, data={"url": "not a url"})) == (
        400,
        "InvalidArgumentError",
    )


def test_get_urls_takes_the_base64_id_or_the_sha256(vt_emulator, http, key):
    url = "http://www.example.com/path?q=1"
    assert error_of(call(http, vt_emulator, "GET", f"/urls/{url_id(url)}", key)) == (404, "NotFoundError")
    sha256 = vt_emulator.add_url(url)
    by_base64 = call(http, vt_emulator, "GET", f"/urls/{url_id(url)}", key).json()["data"]
    by_sha256 = call(http, vt_emulator, "GET", f"/urls/{sha256}", key).json()["data"]
    assert by_base64 == by_sha256
    attributes = by_base64["attributes"]
    assert (by_base64["type"], by_base64["id"], attributes["url"]) == ("url", sha256, url)
    assert set(attributes["last_analysis_stats"]) == set(NETWORK_CATEGORIES)
    assert {"last_final_url", "title", "last_http_response_code"} <= set(attributes)


def test_domain_and_ip_reports_are_deterministic(vt_emulator, http, key):
    first = call(http, vt_emulator, "GET", "/domains/malware.example.net", key).json()["data"]
    again = call(http, vt_emulator, "GET", "/domains/malware.example.net", key).json()["data"]
    assert first == again
    assert set(first["attributes"]["last_analysis_stats"]) == set(NETWORK_CATEGORIES)
    assert first["attributes"]["last_analysis_stats"]["malicious"] >= 5
    result = next(iter(first["attributes"]["last_analysis_results"].values()))
    assert set(result) == {"category", "engine_name", "method", "result"}
    clean = call(http, vt_emulator, "GET", "/domains/example.com", key).json()["data"]["attributes"]
    assert clean["last_analysis_stats"]["malicious"] == 0

    ip = call(http, vt_emulator, "GET", "/ip_addresses/2001:db8::1", key).json()["data"]
    assert (ip["type"], ip["attributes"]["network"]) == ("ip_address", "2001:db8::/48")
    assert {"asn", "as_owner", "country"} <= set(ip["attributes"])
    assert error_of(call(http, vt_emulator, "GET", "/domains/not_a domain", key)) == (400, "InvalidArgumentError")
    assert error_of(call(http, vt_emulator, "GET", "/ip_addresses/300.1.1.1", key)) == (400, "InvalidArgumentError")


def test_answers_are_gzipped_when_asked(vt_emulator, http, key):
    zipped = call(
        http, vt_emulator, "GET", "/domains/example.com", key, headers={"Accept-Encoding": "gzip"}, stream=True
    )
    with zipped:
        assert zipped.headers["Content-Encoding"] == "gzip"
        raw = zipped.raw.read(decode_content=False)
    assert gzip.decompress(raw).startswith(b'{"data"')
    plain = call(http, vt_emulator, "GET", "/domains/example.com", key, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.json()["data"]["id"] == "example.com"


# -- control surface ----------------------------------------------------------------------------


def test_control_endpoints_over_http(vt_emulator, http):
    key = secrets.token_hex(32)
    assert control(http, vt_emulator, "POST", "/keys", json={"key": key, "per_minute": 50, "per_day": 60}).ok

    added = control(http, vt_emulator, "POST", "/files", params={"verdict": "malicious"}, data=b"bad bytes").json()
    report = call(http, vt_emulator, "GET", f"/files/{added['sha256']}", key).json()["data"]["attributes"]
    assert report["last_analysis_stats"]["malicious"] > 40

    faults = control(http, vt_emulator, "POST", "/faults", json={"transient_next": 1}).json()
    assert faults["transient_next"] == 1
    assert error_of(call(http, vt_emulator, "GET", f"/files/{added['sha256']}", key)) == (503, "TransientError")
    assert call(http, vt_emulator, "GET", f"/files/{added['sha256']}", key).status_code == 200

    config = control(http, vt_emulator, "POST", "/config", json={"minute_seconds": 5, "queued_seconds": 0}).json()
    assert (config["minute_seconds"], config["queued_seconds"]) == (5.0, 0.0)
    assert control(http, vt_emulator, "GET", "/config").json() == config
    assert vt_emulator.config.minute_seconds == 5.0

    url_sha256 = control(http, vt_emulator, "POST", "/urls", json={"url": "http://evil.example.com/"}).json()["id"]
    assert call(http, vt_emulator, "GET", f"/urls/{url_sha256}", key).status_code == 200

    assert control(http, vt_emulator, "DELETE", f"/files/{added['sha256']}").ok
    assert error_of(call(http, vt_emulator, "GET", f"/files/{added['sha256']}", key)) == (404, "NotFoundError")

    counts = control(http, vt_emulator, "GET", "/counts", params={"key": key}).json()
    assert counts == {
        "counts": {"GET /files/{id}": 4, "GET /urls/{id}": 1},
        "statuses": {"200": 3, "503": 1, "404": 1},
        "total": 5,
    }
    assert control(http, vt_emulator, "GET", "/counts").json()["total"] == 5  # control calls are not counted

    assert error_of(control(http, vt_emulator, "POST", "/faults", json={"no_such_fault": 1})) == (
        400,
        "BadRequestError",
    )
    assert error_of(control(http, vt_emulator, "POST", "/keys", json={})) == (400, "BadRequestError")

    assert control(http, vt_emulator, "POST", "/reset").ok
    assert error_of(call(http, vt_emulator, "GET", "/ip_addresses/8.8.8.8", key)) == (401, "WrongCredentialsError")
    assert vt_emulator.config.minute_seconds == 60.0


def test_counts_total_and_log(vt_emulator, http, key):
    other = secrets.token_hex(32)
    vt_emulator.add_key(other, per_minute=10, per_day=10)
    call(http, vt_emulator, "GET", "/domains/example.com", key)
    call(http, vt_emulator, "GET", "/ip_addresses/8.8.8.8", key)
    call(http, vt_emulator, "GET", "/ip_addresses/8.8.4.4", other)
    assert vt_emulator.counts(key) == {"GET /domains/{id}": 1, "GET /ip_addresses/{id}": 1}
    assert vt_emulator.counts() == {"GET /domains/{id}": 1, "GET /ip_addresses/{id}": 2}
    assert vt_emulator.total() == 3
    assert vt_emulator.total(endpoint="GET /ip_addresses/{id}") == 2
    assert vt_emulator.total(other, "GET /domains/{id}") == 0
    entries = vt_emulator.log
    assert [(entry.key, entry.endpoint, entry.status) for entry in entries] == [
        (key, "GET /domains/{id}", 200),
        (key, "GET /ip_addresses/{id}", 200),
        (other, "GET /ip_addresses/{id}", 200),
    ]
    assert [entry.time for entry in entries] == sorted(entry.time for entry in entries)


def test_add_file_verdicts(vt_emulator, http, key):
    suspicious = vt_emulator.add_file(b"borderline", verdict="suspicious", name="tool.exe")
    attributes = call(http, vt_emulator, "GET", f"/files/{suspicious}", key).json()["data"]["attributes"]
    assert attributes["last_analysis_stats"]["suspicious"] == 3
    assert attributes["meaningful_name"] == "tool.exe"
    eicar = vt_emulator.add_file(EICAR)
    stats = call(http, vt_emulator, "GET", f"/files/{eicar}", key).json()["data"]["attributes"]["last_analysis_stats"]
    assert stats["malicious"] >= 55
    with pytest.raises(ValueError):
        vt_emulator.add_file(b"x", verdict="dangerous")


# -- the command line -----------------------------------------------------------------------------


def test_cli_prints_its_url_and_serves_until_terminated(http):
    key = secrets.token_hex(32)
    command = [sys.executable, "-m", "vt_emulator", "--port", "0", "--key", f"{key}:10:100", "--quiet"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/api/v3")
            response = http.get(f"{url}/ip_addresses/8.8.8.8", headers={"x-apikey": key}, timeout=30)
            assert response.json()["data"]["id"] == "8.8.8.8"
            counts = http.get(url.removesuffix("/api/v3") + "/_emulator/counts", timeout=30).json()
            assert counts["counts"] == {"GET /ip_addresses/{id}": 1}
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert key not in stderr

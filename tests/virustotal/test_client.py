"""The VirusTotal client against the emulator over real HTTP."""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import warnings
from pathlib import Path

import pytest

from bench.upload_memory import measure
from scanner.virustotal import client as client_module
from scanner.virustotal import errors
from scanner.virustotal.client import DIRECT_UPLOAD_MAX_BYTES, MAX_UPLOAD_BYTES, VirusTotalClient
from scanner.virustotal.reports import FILE_CATEGORIES, detection_ratio, parse_stats, url_id
from vt_emulator import EICAR, Emulator

MiB = 1024 * 1024
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
EICAR_SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def make_client(emulator: Emulator, key: str, **kwargs) -> VirusTotalClient:
    kwargs.setdefault("timeout", (2.0, 10.0))
    return VirusTotalClient(key, base_url=emulator.url, **kwargs)


@pytest.fixture
def roomy_key(vt_emulator: Emulator) -> str:
    """A key whose quota never gets in the way of a test about something else."""
    key = secrets.token_hex(32)
    vt_emulator.add_key(key, per_minute=1000, per_day=100000)
    return key


def sparse_file(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


# -- every error code of the reference maps to its class ----------------------------------------

REFERENCE_ERRORS = [
    (400, "BadRequestError", errors.BadRequestError, False),
    (400, "InvalidArgumentError", errors.InvalidArgumentError, False),
    (400, "NotAvailableYet", errors.NotAvailableYet, True),
    (401, "AuthenticationRequiredError", errors.AuthenticationRequiredError, False),
    (401, "UserNotActiveError", errors.UserNotActiveError, False),
    (401, "WrongCredentialsError", errors.WrongCredentialsError, False),
    (403, "ForbiddenError", errors.ForbiddenError, False),
    (404, "NotFoundError", errors.NotFoundError, False),
    (409, "AlreadyExistsError", errors.AlreadyExistsError, False),
    (424, "FailedDependencyError", errors.FailedDependencyError, True),
    (429, "QuotaExceededError", errors.QuotaExceededError, False),
    (429, "TooManyRequestsError", errors.TooManyRequestsError, False),
    (503, "TransientError", errors.TransientError, True),
    (504, "DeadlineExceededError", errors.DeadlineExceededError, True),
]


@pytest.mark.parametrize(("status", "code", "cls", "retryable"), REFERENCE_ERRORS)
def test_every_reference_error_code_maps_to_its_class(vt_emulator, vt_key, status, code, cls, retryable):
    vt_emulator.set_faults(error_next={"status": status, "code": code, "message": f"emulated {code}"})
    with pytest.raises(cls) as caught:
        make_client(vt_emulator, vt_key).get_ip("8.8.8.8")
    error = caught.value
    assert type(error) is cls
    assert (error.code, error.http_status, error.message) == (code, status, f"emulated {code}")
    assert error.retryable is retryable
    assert isinstance(error, errors.InvalidKeyError) is (status == 401)
    assert isinstance(error, errors.RateLimitedError) is (status == 429)


def test_unknown_code_is_unknown_error_retryable_only_for_server_errors(vt_emulator, vt_key):
    vt_emulator.set_faults(
        error_next=[{"status": 500, "code": "SomethingNewError"}, {"status": 418, "code": "TeapotError"}]
    )
    api = make_client(vt_emulator, vt_key)
    with pytest.raises(errors.UnknownVTError) as server_side:
        api.get_ip("8.8.8.8")
    with pytest.raises(errors.UnknownVTError) as client_side:
        api.get_ip("8.8.8.8")
    assert (server_side.value.code, server_side.value.retryable) == ("SomethingNewError", True)
    assert (client_side.value.code, client_side.value.retryable) == ("TeapotError", False)


@pytest.mark.parametrize(
    ("status", "body", "cls", "retryable"),
    [
        (502, b"<html>Bad Gateway</html>", errors.UnknownVTError, True),
        (429, b"", errors.TooManyRequestsError, False),
        (401, "not json", errors.InvalidKeyError, False),
        (503, {"unexpected": True}, errors.TransientError, True),
        (404, {"error": {"code": "NotFoundError", "message": "gone"}}, errors.NotFoundError, False),
        (
            400,
            json.dumps({"error": {"code": "InvalidArgumentError", "message": "m"}}),
            errors.InvalidArgumentError,
            False,
        ),
    ],
)
def test_error_from_response_handles_envelopes_and_other_bodies(status, body, cls, retryable):
    error = errors.error_from_response(status, body)
    assert type(error) is cls
    assert error.http_status == status
    assert error.retryable is retryable


def test_emulator_errors_map_to_classes(vt_emulator, vt_key):
    with pytest.raises(errors.WrongCredentialsError):
        make_client(vt_emulator, secrets.token_hex(32)).get_ip("8.8.8.8")
    with pytest.raises(errors.AuthenticationRequiredError):
        make_client(vt_emulator, "").get_ip("8.8.8.8")

    api = make_client(vt_emulator, vt_key)
    with pytest.raises(errors.NotFoundError):
        api.get_file("0" * 64)
    vt_emulator.set_faults(transient_next=1)
    with pytest.raises(errors.TransientError) as transient:
        api.get_ip("8.8.8.8")
    assert transient.value.retryable
    assert vt_emulator.statuses(vt_key) == {404: 1, 503: 1}

    one_a_minute = secrets.token_hex(32)
    vt_emulator.add_key(one_a_minute, per_minute=1, per_day=500)
    limited = make_client(vt_emulator, one_a_minute)
    limited.get_ip("8.8.8.8")
    with pytest.raises(errors.QuotaExceededError) as quota:
        limited.get_ip("8.8.8.8")
    assert isinstance(quota.value, errors.RateLimitedError)
    assert vt_emulator.statuses(one_a_minute) == {200: 1, 429: 1}


def test_dropped_connection_is_vt_connection_error(vt_emulator, vt_key):
    vt_emulator.set_faults(drop_next=1)
    with pytest.raises(errors.VTConnectionError) as caught:
        make_client(vt_emulator, vt_key).get_ip("8.8.8.8")
    assert caught.value.retryable and caught.value.reached
    assert str(caught.value) == "VirusTotal did not answer (the connection was dropped before the answer came)"
    assert vt_emulator.statuses(vt_key) == {0: 1}


def test_read_timeout_is_vt_connection_error(vt_emulator, vt_key):
    vt_emulator.set_faults(timeout_next=1, timeout_seconds=1.0)
    with pytest.raises(errors.VTConnectionError) as caught:
        make_client(vt_emulator, vt_key, timeout=(2.0, 0.2)).get_ip("8.8.8.8")
    assert caught.value.retryable and caught.value.reached
    assert str(caught.value) == "VirusTotal did not answer (no answer within 0.2 s)"
    # The emulator does answer, too late; wait for it so no log entry leaks into the next test.
    deadline = time.monotonic() + 10
    while vt_emulator.total(vt_key) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert vt_emulator.statuses(vt_key) == {200: 1}


def test_connection_refused_is_vt_connection_error():
    closed = Emulator()
    closed.start()
    base_url = closed.url
    closed.stop()
    with pytest.raises(errors.VTConnectionError) as caught:
        VirusTotalClient("k", base_url=base_url, timeout=(1.0, 1.0)).get_ip("8.8.8.8")
    address = base_url.split("//")[1].split("/")[0]
    assert str(caught.value) == f"VirusTotal could not be reached (connection refused by {address})"
    assert caught.value.retryable and not caught.value.reached


def test_an_unknown_host_says_name_resolution_failed_and_gives_the_token_back():
    refunds: list[str] = []
    client = VirusTotalClient(
        "k", base_url="https://virustotal.scanner-test.invalid/api/v3", acquire=lambda: lambda: refunds.append("x")
    )
    with pytest.raises(errors.VTConnectionError) as caught:
        client.get_ip("8.8.8.8")
    message = str(caught.value)
    assert message == "VirusTotal could not be reached (name resolution failed for virustotal.scanner-test.invalid)"
    assert "HTTPSConnectionPool" not in message and "Max retries" not in message
    assert refunds == ["x"]  # nothing reached VirusTotal: the quota token is returned


def test_tls_to_a_plain_http_server_fails_with_a_readable_reason(vt_emulator, vt_key):
    address = vt_emulator.url.split("//")[1].split("/")[0]
    with pytest.raises(errors.VTConnectionError) as caught:
        VirusTotalClient(vt_key, base_url=f"https://{address}/api/v3", timeout=(2.0, 2.0)).get_ip("8.8.8.8")
    host = address.split(":")[0]
    assert str(caught.value) == f"VirusTotal could not be reached (the secure connection to {host} failed)"
    assert not caught.value.reached


# -- lookups ------------------------------------------------------------------------------------


def test_get_file_of_a_preloaded_file_by_any_hash(vt_emulator, roomy_key):
    sha256 = vt_emulator.add_file(b"MZ pretend program", verdict="malicious", last_analysis_date=1700000000)
    api = make_client(vt_emulator, roomy_key)
    record = api.get_file(sha256)
    attributes = record["attributes"]
    assert (record["type"], record["id"]) == ("file", sha256)
    assert api.get_file(attributes["md5"])["id"] == sha256
    assert api.get_file(attributes["sha1"].upper())["id"] == sha256
    assert attributes["last_analysis_date"] == 1700000000
    assert set(attributes["last_analysis_stats"]) == set(FILE_CATEGORIES)
    assert attributes["last_analysis_stats"]["malicious"] > 40
    assert attributes["type_tag"] == "peexe"
    results = attributes["last_analysis_results"]
    assert len(results) >= 60
    for name, result in results.items():
        assert result["engine_name"] == name
        assert result["method"] == "blacklist"
        assert result["engine_update"] == "20231114"
        assert set(result) == {"category", "engine_name", "engine_version", "engine_update", "method", "result"}


def test_get_file_of_an_unknown_file_is_not_found(vt_emulator, vt_key):
    with pytest.raises(errors.NotFoundError) as caught:
        make_client(vt_emulator, vt_key).get_file(EICAR_SHA256)
    assert caught.value.http_status == 404


def test_domain_ip_and_url_reports(vt_emulator, roomy_key):
    api = make_client(vt_emulator, roomy_key)
    domain = api.get_domain("evil.example.com")
    assert (domain["type"], domain["id"]) == ("domain", "evil.example.com")
    assert domain["attributes"]["last_analysis_stats"]["malicious"] > 0
    assert {"registrar", "categories", "last_dns_records"} <= set(domain["attributes"])
    ip = api.get_ip("8.8.8.8")
    assert (ip["type"], ip["attributes"]["asn"], ip["attributes"]["network"]) == ("ip_address", 15169, "8.8.8.0/24")
    assert ip["attributes"]["last_analysis_stats"]["malicious"] == 0

    with pytest.raises(errors.NotFoundError):
        api.get_url("https://phish.example.net/login")
    vt_emulator.configure(queued_seconds=0, progress_seconds=0)
    analysis_id = api.scan_url("https://phish.example.net/login")
    assert analysis_id.startswith("u-")
    assert api.get_analysis(analysis_id)["data"]["attributes"]["status"] == "completed"
    url = api.get_url("https://phish.example.net/login")
    assert url["attributes"]["url"] == "https://phish.example.net/login"
    assert url["attributes"]["last_analysis_stats"]["malicious"] > 0
    assert api.get_analysis_item(analysis_id)["id"] == url["id"]


def test_validate_key(vt_emulator, vt_key):
    assert make_client(vt_emulator, vt_key).validate_key() is True
    assert make_client(vt_emulator, secrets.token_hex(32)).validate_key() is False
    assert vt_emulator.counts(vt_key) == {"GET /ip_addresses/{id}": 1}
    vt_emulator.set_faults(drop_next=1)
    with pytest.raises(errors.VTConnectionError):
        make_client(vt_emulator, vt_key).validate_key()


# -- uploads and analyses -------------------------------------------------------------------------


def poll_statuses(api: VirusTotalClient, analysis_id: str, limit: float = 20.0) -> list[dict]:
    """Every analysis answer until it completes (bounded)."""
    answers = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        answers.append(api.get_analysis(analysis_id))
        if answers[-1]["data"]["attributes"]["status"] == "completed":
            return answers
        time.sleep(0.05)
    raise AssertionError(f"analysis still {answers[-1]['data']['attributes']['status']} after {limit}s")


def test_eicar_upload_is_queued_then_in_progress_then_completed(vt_emulator, roomy_key, tmp_path):
    path = tmp_path / "eicar.com"
    path.write_bytes(EICAR)
    api = make_client(vt_emulator, roomy_key)
    # Phases follow the configured timeline, so these steps do not depend on how fast we poll.
    vt_emulator.configure(queued_seconds=3600, progress_seconds=3600)
    analysis_id = api.upload_file(path)

    queued = api.get_analysis(analysis_id)
    assert queued["data"]["attributes"]["status"] == "queued"
    assert queued["data"]["attributes"]["results"] == {}
    assert queued["meta"]["file_info"] == {"sha256": EICAR_SHA256, "sha1": EICAR_SHA1, "md5": EICAR_MD5, "size": 68}
    assert queued["data"]["links"]["item"].endswith(f"/files/{EICAR_SHA256}")
    with pytest.raises(errors.NotFoundError):
        api.get_file(EICAR_SHA256)

    vt_emulator.configure(queued_seconds=0)
    in_progress = api.get_analysis(analysis_id)["data"]["attributes"]
    assert in_progress["status"] == "in-progress"
    assert 1 <= len(in_progress["results"]) < 70
    assert sum(in_progress["stats"].values()) == len(in_progress["results"])

    vt_emulator.configure(progress_seconds=0)
    completed = api.get_analysis(analysis_id)["data"]["attributes"]
    assert completed["status"] == "completed"
    assert completed["stats"]["malicious"] >= 55
    assert completed["stats"]["type-unsupported"] >= 2
    assert completed["results"]["Kaspersky"]["result"] == "EICAR-Test-File"

    report = api.get_file(EICAR_SHA256)["attributes"]
    assert report["last_analysis_date"] == completed["date"]
    assert parse_stats(report) == parse_stats(completed)
    assert report["names"] == ["eicar.com"]


def test_short_timeline_polled_until_completed(vt_emulator, roomy_key, tmp_path):
    vt_emulator.configure(queued_seconds=0.2, progress_seconds=0.5)
    path = tmp_path / "notes.txt"
    path.write_bytes(b"plain notes\n" * 100)
    api = make_client(vt_emulator, roomy_key)
    answers = poll_statuses(api, api.upload_file(path))
    order = ["queued", "in-progress", "completed"]
    seen = [order.index(answer["data"]["attributes"]["status"]) for answer in answers]
    assert seen == sorted(seen)
    final = answers[-1]["data"]["attributes"]["stats"]
    assert (final["malicious"], final["suspicious"]) == (0, 0)
    assert final["undetected"] > 60


def test_suspicious_marker_gives_a_few_suspicious_verdicts(vt_emulator, roomy_key, tmp_path):
    vt_emulator.configure(queued_seconds=0, progress_seconds=0)
    path = tmp_path / "odd.bin"
    path.write_bytes(os.urandom(1000) + b"SCANNER-TEST-SUSPICIOUS" + os.urandom(1000))
    api = make_client(vt_emulator, roomy_key)
    stats = api.get_analysis(api.upload_file(path))["data"]["attributes"]["stats"]
    assert 1 <= stats["suspicious"] <= 5
    assert stats["malicious"] == 0


def test_rescan_of_a_known_file_and_of_an_unknown_one(vt_emulator, roomy_key):
    sha256 = vt_emulator.add_file(b"known content")
    api = make_client(vt_emulator, roomy_key)
    first, second = api.rescan(sha256), api.rescan(sha256)
    assert first != second
    assert api.get_analysis(first)["meta"]["file_info"]["sha256"] == sha256
    with pytest.raises(errors.NotFoundError):
        api.rescan("f" * 64)


def test_file_over_the_threshold_goes_through_an_upload_url(vt_emulator, vt_key, tmp_path):
    path = sparse_file(tmp_path / "big.bin", 33 * MiB)
    assert path.stat().st_size > DIRECT_UPLOAD_MAX_BYTES
    vt_emulator.configure(queued_seconds=0, progress_seconds=0)
    api = make_client(vt_emulator, vt_key)
    analysis = api.get_analysis(api.upload_file(path))
    assert analysis["meta"]["file_info"]["size"] == 33 * MiB
    counts = vt_emulator.counts(vt_key)
    assert counts["GET /files/upload_url"] == 1
    assert counts["POST /_upload"] == 1
    assert counts.get("POST /files", 0) == 0


def test_file_at_the_threshold_goes_to_post_files(vt_emulator, vt_key, tmp_path):
    path = sparse_file(tmp_path / "edge.bin", DIRECT_UPLOAD_MAX_BYTES)
    make_client(vt_emulator, vt_key).upload_file(path)
    assert vt_emulator.counts(vt_key) == {"POST /files": 1}


def test_file_over_650_mb_is_refused_before_any_request(vt_emulator, vt_key, tmp_path):
    path = sparse_file(tmp_path / "huge.bin", 651 * MiB)
    calls = []
    api = make_client(vt_emulator, vt_key, acquire=lambda: calls.append(1))
    with pytest.raises(errors.FileTooLargeError):
        api.upload_file(path)
    assert path.stat().st_size > MAX_UPLOAD_BYTES
    assert (calls, vt_emulator.total()) == ([], 0)


def test_upload_sends_a_plain_filename_parameter(vt_emulator, roomy_key, tmp_path):
    # The emulator refuses `filename*=` like VirusTotal does, so a non-ASCII name proves the form.
    path = tmp_path / "upload.bin"
    path.write_bytes(b"some bytes")
    vt_emulator.configure(queued_seconds=0, progress_seconds=0)
    api = make_client(vt_emulator, roomy_key)
    analysis_id = api.upload_file(path, filename="résumé 2024.pdf")
    assert api.get_analysis_item(analysis_id)["attributes"]["names"] == ["résumé 2024.pdf"]


# -- the quota gate -------------------------------------------------------------------------------


def test_acquire_runs_right_before_every_request(vt_emulator, roomy_key, tmp_path):
    seen = []  # the emulator's request count at each acquire: proves "before", one per request
    api = make_client(vt_emulator, roomy_key, acquire=lambda: seen.append(vt_emulator.total()))
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello")
    api.upload_file(small)
    assert seen == [0]
    api.upload_file(sparse_file(tmp_path / "big.bin", 31 * MiB))
    assert seen == [0, 1, 2]
    with pytest.raises(errors.NotFoundError):
        api.get_file("a" * 64)
    assert seen == [0, 1, 2, 3]
    assert vt_emulator.total() == 4


class BudgetSpent(Exception):
    pass


def test_acquire_exception_propagates_untouched_and_nothing_is_sent(vt_emulator, vt_key, tmp_path):
    def refuse() -> None:
        raise BudgetSpent("no budget left")

    api = make_client(vt_emulator, vt_key, acquire=refuse)
    path = tmp_path / "small.txt"
    path.write_bytes(b"hello")
    for call in (lambda: api.get_file(EICAR_SHA256), lambda: api.upload_file(path), api.validate_key):
        with pytest.raises(BudgetSpent, match="no budget left"):
            call()
    assert vt_emulator.total() == 0


# -- secrecy --------------------------------------------------------------------------------------


def test_the_key_never_shows_in_logs_reprs_or_errors(vt_emulator, caplog):
    secret = secrets.token_hex(32)
    caplog.set_level(logging.DEBUG)
    api = make_client(vt_emulator, secret, timeout=(2.0, 0.2))
    messages = [repr(api), str(api), repr(vt_emulator)]
    vt_emulator.set_faults(drop_next=1)
    for call in (lambda: api.get_ip("8.8.8.8"), lambda: api.get_ip("8.8.8.8")):
        with pytest.raises(errors.VirusTotalError) as caught:
            call()
        messages += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
    vt_emulator.add_key(secret)
    vt_emulator.set_faults(timeout_next=1, timeout_seconds=1.0)
    with pytest.raises(errors.VTConnectionError) as timed_out:
        api.get_ip("8.8.8.8")
    messages += [str(timed_out.value), repr(timed_out.value.__cause__)]
    with pytest.raises(errors.NotFoundError) as not_found:
        make_client(vt_emulator, secret).get_file("b" * 64)
    messages.append(str(not_found.value))
    deadline = time.monotonic() + 10
    while vt_emulator.total() < 4 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert any("/api/v3/" in record.getMessage() for record in caplog.records)
    everything = "\n".join(messages + [record.getMessage() for record in caplog.records])
    assert secret not in everything


# -- the shared pools -----------------------------------------------------------------------------


def test_every_request_asks_for_gzip_and_names_the_client():
    headers = client_module._shared_pools().headers
    assert headers["Accept-Encoding"] == "gzip"
    assert "gzip" in headers["User-Agent"]
    assert "x-apikey" not in {name.lower() for name in headers}


def test_a_forked_child_gets_its_own_connections(vt_emulator, vt_key):
    api = make_client(vt_emulator, vt_key)
    api.get_ip("8.8.8.8")
    parent_pools = client_module._shared_pools()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking a threaded process, on purpose
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            fresh = client_module._shared_pools() is not parent_pools
            api.get_ip("8.8.8.8")
            code = 0 if fresh else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client_module._shared_pools() is parent_pools
    assert vt_emulator.statuses(vt_key) == {200: 2}


@pytest.fixture
def proxy_env(monkeypatch):
    """Proxy variables as set here, read afresh by new pools (the process reads them once)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    client_module.close_session()
    client_module._proxy_for.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    client_module.close_session()
    client_module._proxy_for.cache_clear()


def test_the_environments_proxy_carries_the_requests(vt_emulator, vt_key, proxy_env):
    closed = Emulator()
    closed.start()
    proxy = closed.url.split("/api/")[0]
    closed.stop()
    proxy_env.setenv("http_proxy", proxy)
    with pytest.raises(errors.VTConnectionError) as caught:
        make_client(vt_emulator, vt_key).get_ip("8.8.8.8")
    assert str(caught.value) == "VirusTotal could not be reached (the proxy could not be reached)"
    assert not caught.value.reached
    assert vt_emulator.total(vt_key) == 0


def test_no_proxy_sends_the_requests_directly(vt_emulator, vt_key, proxy_env):
    proxy_env.setenv("http_proxy", "http://proxy.scanner-test.invalid:3128")
    proxy_env.setenv("no_proxy", "127.0.0.1,localhost")
    assert make_client(vt_emulator, vt_key).get_ip("8.8.8.8")["id"] == "8.8.8.8"
    assert vt_emulator.statuses(vt_key) == {200: 1}


# -- streaming keeps memory flat --------------------------------------------------------------------


def test_upload_streams_from_disk_in_flat_memory(vt_emulator, roomy_key, tmp_path):
    size = 200 * MiB
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        block = os.urandom(MiB)
        for _ in range(size // MiB):
            handle.write(block)
    growth = measure("streaming", vt_emulator.url, roomy_key, path)["growth_kib"] * 1024
    naive = measure("naive", vt_emulator.url, roomy_key, path)["growth_kib"] * 1024
    # Streaming holds one send block (16 KiB) and the encoder's small buffer: a few MiB of growth,
    # measured 2-7 MiB with interpreter noise. Reading the file into memory even once adds 200 MiB
    # (the naive upload, measured alongside to prove the bound can fail, grows ~400 MiB), so
    # 40 MiB, a fifth of the file, leaves room for noise and still catches any whole-body buffer.
    assert growth < 40 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB for a {size // MiB} MiB upload"
    assert naive > size
    assert vt_emulator.counts(roomy_key)["POST /_upload"] == 2


# -- pure helpers -------------------------------------------------------------------------------------


def test_url_id_is_unpadded_urlsafe_base64():
    assert url_id("http://www.virustotal.com/") == "aHR0cDovL3d3dy52aXJ1c3RvdGFsLmNvbS8"
    assert url_id("https://example.com/?q=>>>") == "aHR0cHM6Ly9leGFtcGxlLmNvbS8_cT0-Pj4"
    assert "=" not in url_id("a")


def test_parse_stats_returns_all_eight_categories_defaulting_to_zero():
    old_report = {"last_analysis_stats": {"malicious": 3, "undetected": 60, "type-unsupported": 4}}
    assert parse_stats(old_report) == {
        "harmless": 0,
        "malicious": 3,
        "suspicious": 0,
        "undetected": 60,
        "timeout": 0,
        "type-unsupported": 4,
        "failure": 0,
        "confirmed-timeout": 0,
    }
    assert parse_stats({"stats": {"harmless": 2}})["harmless"] == 2
    assert parse_stats({}) == dict.fromkeys(FILE_CATEGORIES, 0)


def test_detection_ratio_counts_only_engines_that_judged():
    stats = {"malicious": 5, "suspicious": 1, "undetected": 60, "harmless": 0, "type-unsupported": 4, "timeout": 2}
    assert detection_ratio(stats) == (5, 66)

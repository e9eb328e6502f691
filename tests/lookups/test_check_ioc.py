"""POST /api/check_ioc against the VirusTotal emulator over HTTP. Emulator request counts prove
the order of answers: cache, then our database, then VirusTotal."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

import pytest

from scanner.extensions import cache
from scanner.virustotal.store import get_report

from .helpers import check, domain_report, md5, sha1, store_reports, wait_for_lookup

FILE, URL, URLS, ANALYSIS = "GET /files/{id}", "GET /urls/{id}", "POST /urls", "GET /analyses/{id}"
DOMAIN, IP = "GET /domains/{id}", "GET /ip_addresses/{id}"


def requests_since(vt_emulator, key: dict, before: int) -> int:
    return vt_emulator.total(key["key_value"]) - before


def test_answer_has_seed_002_shape_with_source_and_age(client, user, add_key, vt_emulator):
    key = add_key(user)
    before = vt_emulator.total(key["key_value"])

    response = check(client, user, "8.8.8.8")

    assert response.status_code == 200, response.json
    body = response.json
    assert body["ioc"] == "8.8.8.8" and body["ioc_type"] == "ipv4" and body["status"] == "completed"
    assert body["lookup_id"]
    provider = body["providers"][0]
    assert provider["provider"] == "virustotal" and provider["status"] == "ok"
    assert isinstance(provider["latency_ms"], int)
    assert provider["harmless_count"] > 0 and provider["malicious_count"] == 0
    assert provider["context"]["as_owner"] == "GOOGLE"
    assert provider["permalink"] == "https://www.virustotal.com/gui/ip-address/8.8.8.8"
    # ISO 8601 in UTC like every other date the API gives, not VirusTotal's Unix seconds.
    analysed = datetime.fromisoformat(provider["last_analysis_date"])
    assert analysed.utcoffset() == timedelta(0) and "T" in provider["last_analysis_date"]
    assert body["summary"]["verdict"] == "clean"
    assert 0 <= body["summary"]["score"] < 20
    assert body["summary"]["explanation"].startswith("None of")
    assert isinstance(body["timing"]["total_ms"], int)
    assert body["cached"] is False and body["source"] == "virustotal"
    assert body["report_age_seconds"] == 0
    assert requests_since(vt_emulator, key, before) == 1
    assert vt_emulator.counts(key["key_value"])[IP] == 2  # the key check, then this lookup


def test_repeat_costs_nothing_force_refresh_exactly_one_and_case_variants_nothing(client, user, add_key, vt_emulator):
    key = add_key(user)
    first = check(client, user, "Example.COM")
    assert first.status_code == 200 and first.json["source"] == "virustotal"
    assert first.json["ioc"] == "example.com"
    before = vt_emulator.total(key["key_value"])

    again = check(client, user, "example.com")
    upper = check(client, user, "EXAMPLE.COM.")
    defanged = check(client, user, "example[.]com")
    assert requests_since(vt_emulator, key, before) == 0
    assert {again.json["source"], upper.json["source"], defanged.json["source"]} == {"cache"}
    assert again.json["cached"] is True
    assert again.json["summary"] == first.json["summary"]

    refreshed = check(client, user, "example.com", force_refresh=True)
    assert refreshed.status_code == 200
    assert refreshed.json["source"] == "virustotal" and refreshed.json["cached"] is False
    assert requests_since(vt_emulator, key, before) == 1
    assert vt_emulator.counts(key["key_value"])[DOMAIN] == 2


def test_database_answers_when_the_cache_is_empty_and_refills_it(app, client, user, add_key, vt_emulator):
    key = add_key(user)
    store_reports(app, {("domain", "stored.example.org"): domain_report("stored.example.org", malicious=4)})
    before = vt_emulator.total(key["key_value"])

    first = check(client, user, "stored.example.org")
    second = check(client, user, "stored.example.org")

    assert first.json["source"] == "database" and first.json["cached"] is True
    assert first.json["summary"]["verdict"] == "malicious"
    assert second.json["source"] == "cache"
    assert requests_since(vt_emulator, key, before) == 0
    with app.app_context():
        assert cache.get("vt_domain_stored.example.org") is not None  # seed 000's key


def test_a_stale_stored_report_is_fetched_again(app, client, user, add_key, vt_emulator, monkeypatch):
    key = add_key(user)
    store_reports(app, {("domain", "old.example.org"): domain_report("old.example.org")})
    monkeypatch.setitem(app.config, "LOOKUP_FRESH_SECONDS", {**app.config["LOOKUP_FRESH_SECONDS"], "domain": 0})
    before = vt_emulator.total(key["key_value"])

    response = check(client, user, "old.example.org")

    assert response.json["source"] == "virustotal"
    assert requests_since(vt_emulator, key, before) == 1


def test_hashes_share_the_file_scans_store_and_aliases(app, client, user, add_key, vt_emulator):
    content = b"a sample VirusTotal knows well\n"
    sha256 = vt_emulator.add_file(content, verdict="malicious")
    key = add_key(user)
    before = vt_emulator.total(key["key_value"])

    by_md5 = check(client, user, md5(content).upper())
    assert by_md5.status_code == 200
    assert by_md5.json["ioc"] == md5(content) and by_md5.json["ioc_type"] == "md5"
    assert by_md5.json["summary"]["verdict"] == "malicious"
    assert by_md5.json["summary"]["score"] >= 50
    assert by_md5.json["providers"][0]["evidence"][0]["category"] == "malicious"
    assert requests_since(vt_emulator, key, before) == 1

    with app.app_context():  # an empty cache proves the database answers
        cache.clear()
    for value in (sha256, sha1(content), md5(content)):
        answer = check(client, user, value)
        assert answer.json["source"] == "database", value
        assert answer.json["summary"]["verdict"] == "malicious"
    assert requests_since(vt_emulator, key, before) == 1
    with app.app_context():
        assert get_report("file", sha256) is not None  # stored once, under the sha256 a scan uses
        assert get_report("file", md5(content)) is None


def test_a_sha256_a_file_scan_fetched_costs_nothing(app, client, user, add_key, vt_emulator):
    sha256 = "a" * 64
    report = {
        "type": "file",
        "id": sha256,
        "attributes": {"sha256": sha256, "last_analysis_stats": {"malicious": 0, "undetected": 60}},
    }
    store_reports(app, {("file", sha256): report})
    key = add_key(user)
    before = vt_emulator.total(key["key_value"])

    response = check(client, user, sha256.upper())

    assert response.json["source"] == "database" and response.json["summary"]["verdict"] == "clean"
    assert requests_since(vt_emulator, key, before) == 0


def test_an_unknown_hash_is_unknown_not_clean_and_is_remembered_briefly(client, user, add_key, vt_emulator):
    key = add_key(user)
    before = vt_emulator.total(key["key_value"])

    first = check(client, user, "0" * 64)
    again = check(client, user, "0" * 64)

    assert first.status_code == 200
    assert first.json["providers"][0]["status"] == "not_found"
    assert first.json["summary"] == {"verdict": "unknown", "score": None, "explanation": "VirusTotal has never seen it"}
    assert again.json["source"] == "cache" and again.json["summary"]["verdict"] == "unknown"
    assert requests_since(vt_emulator, key, before) == 1


def test_a_known_url_is_looked_up_by_its_canonical_form(client, user, add_key, vt_emulator):
    vt_emulator.add_url("http://malware.example.net/payload", verdict="malicious")
    key = add_key(user)

    response = check(client, user, "HTTP://Malware.Example.NET:80/payload#top")

    assert response.status_code == 200, response.json
    assert response.json["ioc"] == "http://malware.example.net/payload" and response.json["ioc_type"] == "url"
    assert response.json["summary"]["verdict"] == "malicious"
    assert vt_emulator.counts(key["key_value"]).get(URL) == 1
    assert URLS not in vt_emulator.counts(key["key_value"])


def test_an_unknown_url_is_submitted_and_a_worker_finishes_it(client, user, add_key, vt_emulator, worker):
    vt_emulator.configure(queued_seconds=0.3, progress_seconds=0.3)
    key = add_key(user)

    response = check(client, user, "https://fresh-phish.example.com/login")

    assert response.status_code == 202, response.json
    assert response.headers["Location"] == f"/api/lookup/{response.json['lookup_id']}"
    body = response.json
    assert body["status"] == "pending" and body["providers"][0]["status"] == "pending"
    assert body["summary"]["verdict"] == "unknown" and body["summary"]["score"] is None
    done = wait_for_lookup(client, user, body["lookup_id"])
    assert done["status"] == "completed", done
    assert done["verdict"] == "malicious" and done["source"] == "virustotal"
    counts = vt_emulator.counts(key["key_value"])
    assert counts[URL] == 1 and counts[URLS] == 1 and counts[ANALYSIS] >= 1
    before = vt_emulator.total(key["key_value"])
    assert check(client, user, "https://fresh-phish.example.com/login").json["source"] == "cache"
    assert vt_emulator.total(key["key_value"]) == before


def test_spent_budget_answers_202_and_a_worker_finishes_when_it_frees(
    app, client, user, add_key, vt_emulator, start_worker, monkeypatch, caplog
):
    # A one-request-per-second key: its check at creation spends the budget.
    scale = {"VT_QUOTA_MINUTE_SECONDS": 1.0, "VT_QUOTA_MARGIN_SECONDS": 0.2}
    for name, value in scale.items():
        monkeypatch.setitem(app.config, name, value)
    vt_emulator.configure(minute_seconds=1)
    key = add_key(user, per_minute=1)
    caplog.set_level(logging.INFO, logger="scanner.work")

    response = check(client, user, "quota.example.com")

    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "pending"
    assert body["providers"][0]["status"] == "rate_limited"
    assert body["summary"]["verdict"] == "unknown" and body["summary"]["score"] is None  # no verdict from a 429
    # The web's log names the lookup as the worker's will, though it is not stored yet as it waits.
    waits = [r.getMessage() for r in caplog.records if r.name == "scanner.work" and "for VirusTotal quota" in r.message]
    assert waits and waits[0].startswith(f"Lookup {body['lookup_id']} waits")
    start_worker(**{name: str(value) for name, value in scale.items()})
    done = wait_for_lookup(client, user, body["lookup_id"])
    assert done["status"] == "completed" and done["verdict"] == "clean"
    assert done["provider_results"][0]["status"] == "ok"
    assert 429 not in vt_emulator.statuses(key["key_value"])


def test_an_unknown_url_left_waiting_for_quota_is_submitted_without_a_second_lookup(
    app, client, user, add_key, vt_emulator, start_worker, monkeypatch
):
    # Two requests per one-second "minute": the key's check at creation and the URL's lookup spend
    # them, so the submission has to wait for the budget.
    scale = {"VT_QUOTA_MINUTE_SECONDS": 1.0, "VT_QUOTA_MARGIN_SECONDS": 0.2}
    for name, value in scale.items():
        monkeypatch.setitem(app.config, name, value)
    vt_emulator.configure(minute_seconds=1, queued_seconds=0, progress_seconds=0)
    key = add_key(user, per_minute=2)

    response = check(client, user, "https://slow-phish.example.com/login")

    assert response.status_code == 202, response.json
    assert response.json["providers"][0]["status"] == "rate_limited"
    counts = vt_emulator.counts(key["key_value"])
    assert counts.get(URL) == 1 and counts.get(URLS, 0) == 0
    start_worker(**{name: str(value) for name, value in scale.items()})
    done = wait_for_lookup(client, user, response.json["lookup_id"])
    assert done["status"] == "completed", done
    counts = vt_emulator.counts(key["key_value"])
    assert counts.get(URL) == 1 and counts.get(URLS) == 1  # looked up once, submitted once
    assert 429 not in vt_emulator.statuses(key["key_value"])


@pytest.mark.parametrize(
    ("ioc", "message"),
    [
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::1", "::1 is a loopback address"),
        ("169.254.1.1", "169.254.1.1 is a link-local address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
        ("http://192.168.1.1/admin", "192.168.1.1 is a private address"),
        ("printer.local", "printer.local is a private or reserved name"),
    ],
)
def test_private_and_reserved_addresses_are_refused_clearly(client, user, ioc, message):
    response = check(client, user, ioc)
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "IOC_VALIDATION_ERROR"
    assert error["message"].startswith(message)
    assert "VirusTotal has no data" in error["message"]


@pytest.mark.parametrize("ioc", ["not an indicator", "", "abc123", "javascript://alert(1)", "x" * 3000])
def test_anything_else_is_400_saying_what_was_expected(client, user, ioc):
    response = check(client, user, ioc)
    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "IOC_VALIDATION_ERROR"
    assert "expected" in error["message"] or "Unsupported URL scheme" in error["message"]
    assert "domain" in error["details"]["expected"]


def test_unknown_fields_and_missing_token_are_refused(client, user):
    assert client.post("/api/check_ioc", json={"ioc": "8.8.8.8", "extra": 1}, headers=user.headers).status_code == 400
    assert client.post("/api/check_ioc", json={"ioc": "8.8.8.8"}).status_code == 401


def test_without_a_key_cached_answers_still_come_but_virustotal_needs_one(app, client, user):
    store_reports(app, {("domain", "known.example.org"): domain_report("known.example.org")})

    assert check(client, user, "known.example.org").status_code == 200
    response = check(client, user, "unknown.example.org")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "NO_ACTIVE_API_KEY"


def test_show_raw_includes_virustotal_object(client, user, add_key, vt_emulator):
    add_key(user)
    body = check(client, user, "1.1.1.1", show_raw=True).json
    raw = body["providers"][0]["raw"]
    assert raw["type"] == "ip_address" and raw["id"] == "1.1.1.1"
    assert "raw" not in check(client, user, "1.1.1.1").json["providers"][0]


def test_virustotal_refusing_fails_the_lookup_with_the_reason(client, user, add_key, vt_emulator):
    add_key(user)
    vt_emulator.set_faults(error_next={"status": 403, "code": "ForbiddenError"})

    response = check(client, user, "forbidden.example.com")

    assert response.status_code == 200
    assert response.json["status"] == "failed"
    assert response.json["summary"]["verdict"] == "unknown"
    assert "ForbiddenError" in response.json["error"]


def test_each_kind_of_answer_is_the_text_its_documented_schema_makes(app, client, user, add_key, vt_emulator):
    """check_ioc writes its answer without flask-smorest's dump (scanner/json_answers.py): for
    every kind of answer, the text is what the dump of the schema the API documents would send."""
    from scanner.extensions import db
    from scanner.json_answers import made
    from scanner.lookups import presenters, services
    from scanner.lookups.models import Lookup
    from scanner.lookups.schemas import LookupResultSchema

    content = b"a sample every engine has an opinion of\n"
    vt_emulator.add_file(content, verdict="malicious")
    named = b"a sample whose name is not ASCII\n"
    vt_emulator.add_file(named, verdict="malicious", name="Rechnung_f\u00fcr_Sie.exe")
    vt_emulator.add_url("http://malware.example.net/payload", verdict="malicious")
    add_key(user)
    answers = [
        check(client, user, "8.8.8.8"),  # VirusTotal's, with context
        check(client, user, "8.8.8.8"),  # the cache's
        check(client, user, md5(content)),  # malicious, with evidence
        check(client, user, md5(named), show_raw=True),  # text beyond ASCII, escaped as the app's JSON is
        check(client, user, "http://malware.example.net/payload", show_raw=True),  # with VirusTotal's object
        check(client, user, "0" * 64),  # not found
        check(client, user, "https://fresh-phish.example.com/login"),  # pending: 202
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 200, 202]
    assert any(a.json["providers"][0]["evidence"] for a in answers) and "raw" in answers[4].json["providers"][0]
    assert "\\u00fc" in answers[3].get_data(as_text=True) and answers[3].get_data().isascii()
    schema = LookupResultSchema()
    with app.test_request_context():
        for answer in answers:
            lookup = db.session.get(Lookup, uuid.UUID(answer.json["lookup_id"]))
            raw = services.raw_report(lookup) if "raw" in answer.json["providers"][0] else None
            assert answer.get_data(as_text=True) == made(schema, presenters.lookup_result(lookup, raw))
        db.session.remove()

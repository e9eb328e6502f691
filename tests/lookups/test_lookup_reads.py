"""Reading lookups back: one with its notes (owner or admin only) and the history."""

from __future__ import annotations

import uuid

import pytest

from .helpers import check, domain_report, store_reports


@pytest.fixture
def known(app):
    """Reports already stored, so lookups answer with no VirusTotal request."""
    reports = {
        ("domain", "bad.example.org"): domain_report("bad.example.org", malicious=12),
        ("domain", "good.example.org"): domain_report("good.example.org"),
        ("ip", "9.9.9.9"): {
            "type": "ip_address",
            "id": "9.9.9.9",
            "attributes": {"last_analysis_stats": {"harmless": 70}},
        },
    }
    store_reports(app, reports)


def test_a_lookup_reads_back_in_seed_002_shape_with_notes(client, user, known):
    lookup_id = check(client, user, "bad.example.org").json["lookup_id"]

    note = client.post(
        f"/api/lookup/{lookup_id}/notes", json={"text": " Seen in phishing wave 42 "}, headers=user.headers
    )
    assert note.status_code == 201, note.json
    assert note.json["text"] == "Seen in phishing wave 42"
    assert note.json["author"]["username"] == user.username
    body = client.get(f"/api/lookup/{lookup_id}", headers=user.headers).json

    assert body["id"] == lookup_id
    assert body["ioc"]["value"] == "bad.example.org" and body["ioc"]["type"] == "domain"
    uuid.UUID(body["ioc"]["id"])
    assert body["user"] == {"id": user.id, "email": user.email, "role": "user"}
    assert body["status"] == "completed" and body["verdict"] == "malicious" and body["score"] >= 50
    assert body["started_at"] and body["finished_at"]
    assert body["provider_results"][0]["malicious_count"] == 12
    assert [n["text"] for n in body["notes"]] == ["Seen in phishing wave 42"]
    assert body["source"] == "database" and body["cached"] is True
    again = check(client, user, "BAD.example.org").json["lookup_id"]
    other = client.get(f"/api/lookup/{again}", headers=user.headers).json
    assert other["ioc"]["id"] == body["ioc"]["id"]  # one indicator, one id


def test_only_the_owner_or_an_admin_reads_or_annotates(client, user, make_user, make_admin, known):
    lookup_id = check(client, user, "good.example.org").json["lookup_id"]
    stranger, admin = make_user(), make_admin()

    assert client.get(f"/api/lookup/{lookup_id}", headers=stranger.headers).status_code == 404
    missing = client.get(f"/api/lookup/{uuid.uuid4()}", headers=stranger.headers)
    assert missing.status_code == 404 and missing.json["error"]["message"] == "Lookup not found"
    post = client.post(f"/api/lookup/{lookup_id}/notes", json={"text": "mine now"}, headers=stranger.headers)
    assert post.status_code == 404
    assert client.get(f"/api/lookup/{lookup_id}", headers=admin.headers).status_code == 200
    assert (
        client.post(f"/api/lookup/{lookup_id}/notes", json={"text": "triaged"}, headers=admin.headers).status_code
        == 201
    )
    assert client.get("/api/lookup/not-a-uuid", headers=user.headers).status_code == 400
    blank = client.post(f"/api/lookup/{lookup_id}/notes", json={"text": "   "}, headers=user.headers)
    assert blank.status_code == 400


def test_history_filters_sorts_and_pages(client, user, make_user, known):
    for ioc in ("bad.example.org", "good.example.org", "9.9.9.9", "good.example.org"):
        assert check(client, user, ioc).status_code == 200
    check(client, make_user(), "bad.example.org")  # someone else's

    everything = client.get("/api/lookups", headers=user.headers).json
    assert everything["pagination"] == {"page": 1, "per_page": 10, "total_pages": 1, "total_items": 4}
    assert [row["ioc"] for row in everything["lookups"]][0] == "good.example.org"  # newest first

    def iocs(query: str) -> list[str]:
        response = client.get(f"/api/lookups?{query}", headers=user.headers)
        assert response.status_code == 200, response.json
        return [row["ioc"] for row in response.json["lookups"]]

    assert iocs("type=ipv4") == ["9.9.9.9"]
    assert iocs("type=domain,ipv6&verdict=malicious") == ["bad.example.org"]
    assert sorted(iocs("verdict=clean")) == ["9.9.9.9", "good.example.org", "good.example.org"]
    assert iocs("ioc=GOOD.example.org") == ["good.example.org", "good.example.org"]
    assert iocs("sort_by=score:desc")[0] == "bad.example.org"
    assert iocs("sort_by=ioc&sort_order=asc") == ["9.9.9.9", "bad.example.org", "good.example.org", "good.example.org"]
    assert iocs("date_from=2000-01-01&date_to=2000-01-02") == []
    # A range that ends before it starts selects nothing; the far end of the calendar is a bound.
    assert iocs("date_from=2024-02-01&date_to=2024-01-01") == []
    assert len(iocs("date_to=9999-12-31")) == 4
    paged = client.get("/api/lookups?per_page=3&page=2", headers=user.headers).json
    assert paged["pagination"]["total_pages"] == 2 and len(paged["lookups"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "type=hash",
        "verdict=bad",
        "sort_by=nope",
        "per_page=1000",
        "page=0",
        "page=99999999999999999999",
        "date_from=yesterday",
        "ioc=not%20an%20ioc",
        "unknown=1",
    ],
)
def test_history_refuses_bad_parameters(client, user, query):
    response = client.get(f"/api/lookups?{query}", headers=user.headers)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "VALIDATION_ERROR"

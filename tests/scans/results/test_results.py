"""GET /api/scan/{scan_id}/results: the full report of one scan, as seed 001 shows it."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from .factory import engines, make_file, make_scan

SEED_KEYS = {"scan_id", "file_id", "filename", "status", "detection_ratio", "scan_date", "results", "summary"}
EIGHT = {
    "malicious",
    "suspicious",
    "undetected",
    "harmless",
    "timeout",
    "confirmed-timeout",
    "failure",
    "type-unsupported",
}


def test_completed_scan_report_has_seed_shape_engines_summary_and_file(client, db, user):
    file = make_file(user, "invoice.exe", content=b"MZ-not-really")
    panel = engines(malicious=2, suspicious=1, undetected=60, harmless=3, timeout=2, confirmed_timeout=1, failure=1)
    panel += [("Engine-unsupported", "type-unsupported", None)]
    scan = make_scan(user, file, engines=panel)
    db.session.commit()

    r = client.get(f"/api/scan/{scan.id}/results", headers=user.headers)

    assert r.status_code == 200, r.json
    body = r.json
    assert body.keys() >= SEED_KEYS
    assert body["scan_id"] == str(scan.id) and body["file_id"] == str(file.id)
    assert body["filename"] == "invoice.exe"
    assert body["status"] == "completed"
    assert body["verdict"] == "malicious"
    # malicious / (malicious + suspicious + undetected + harmless): timeouts and failures left out.
    assert body["detection_ratio"] == "2/66"
    assert datetime.fromisoformat(body["scan_date"]).utcoffset().total_seconds() == 0
    assert (body["hash_md5"], body["hash_sha1"], body["hash_sha256"]) == (file.md5, file.sha1, file.sha256)
    assert body["file_size"] == len(b"MZ-not-really") and body["mime_type"] == "application/x-dosexec"
    assert body["permalink"] == f"https://www.virustotal.com/gui/file/{file.sha256}"

    summary = body["summary"]
    assert summary.keys() >= EIGHT
    assert {k: summary[k] for k in EIGHT} == {
        "malicious": 2,
        "suspicious": 1,
        "undetected": 60,
        "harmless": 3,
        "timeout": 2,
        "confirmed-timeout": 1,
        "failure": 1,
        "type-unsupported": 1,
    }
    assert summary["detection_ratio"] == "2/66"

    assert len(body["results"]) == len(panel)
    first = next(e for e in body["results"] if e["engine_name"] == "Engine-000")
    assert first == {
        "engine_name": "Engine-000",
        "engine_version": "1.0",
        "result": "Trojan.Generic",
        "category": "malicious",
        "update_date": "2024-03-01T00:00:00+00:00",  # seed 001 gives it as a date-time
        "method": "blacklist",
    }
    assert {e["category"] for e in body["results"]} == EIGHT


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        ({"malicious": 1, "undetected": 10}, "malicious"),
        ({"suspicious": 2, "undetected": 10}, "suspicious"),
        ({"undetected": 10, "harmless": 2}, "clean"),
        ({"timeout": 5, "type_unsupported": 3}, "unknown"),
    ],
)
def test_verdict_follows_the_counts(client, db, user, counts, verdict):
    scan = make_scan(user, **counts)
    db.session.commit()

    body = client.get(f"/api/scan/{scan.id}/results", headers=user.headers).json

    assert body["verdict"] == verdict


def test_unfinished_and_failed_scans_say_where_they_are(client, db, user):
    running = make_scan(user, status="scanning")
    failed = make_scan(user, status="failed", error="VirusTotal rejected the upload")
    db.session.commit()

    body = client.get(f"/api/scan/{running.id}/results", headers=user.headers).json
    assert (body["status"], body["stage"], body["verdict"]) == ("scanning", "waiting_for_analysis", "unknown")
    assert body["results"] == [] and body["detection_ratio"] is None and body["scan_date"] is None
    assert body["summary"]["malicious"] is None

    body = client.get(f"/api/scan/{failed.id}/results", headers=user.headers).json
    assert (body["status"], body["error"], body["verdict"]) == ("failed", "VirusTotal rejected the upload", "unknown")


def test_engine_update_that_is_not_a_date_is_left_empty(client, db, user):
    scan = make_scan(user, engines=engines(undetected=1))
    scan.results[0].engine_update = "latest"
    db.session.commit()

    body = client.get(f"/api/scan/{scan.id}/results", headers=user.headers).json

    assert body["results"][0]["update_date"] is None


def test_malformed_id_is_400_and_unknown_is_404(client, user):
    r = client.get("/api/scan/not-a-uuid/results", headers=user.headers)
    assert r.status_code == 400 and r.json["error"]["code"] == "VALIDATION_ERROR"

    r = client.get(f"/api/scan/{uuid.uuid4()}/results", headers=user.headers)
    assert r.status_code == 404 and r.json["error"]["code"] == "NOT_FOUND"


def test_needs_a_token(client, db, user):
    scan = make_scan(user)
    db.session.commit()

    assert client.get(f"/api/scan/{scan.id}/results").status_code == 401


def test_admin_reads_any_users_report(client, db, user, make_admin):
    scan = make_scan(user, malicious=3, undetected=7)
    db.session.commit()
    admin = make_admin()

    r = client.get(f"/api/scan/{scan.id}/results", headers=admin.headers)

    assert r.status_code == 200 and r.json["detection_ratio"] == "3/10"

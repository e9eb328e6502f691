"""Bulk jobs: reading the upload, answering within the key's budget, results, exports, cancelling,
and surviving a worker that dies mid-job."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from sqlalchemy import func, select

from .helpers import domain_report, store_reports, wait_for_job

# One VirusTotal "minute" lasts this long in the timed tests, for the emulator and for our budgets.
MINUTE = 1.0
SCALED = {"VT_QUOTA_MINUTE_SECONDS": str(MINUTE), "VT_QUOTA_MARGIN_SECONDS": "0.2"}


def submit(client, user, text: str, filename: str = "iocs.txt", **extra):
    data = {"file": (io.BytesIO(text.encode()), filename), **extra}
    return client.post("/api/bulk", data=data, headers=user.headers, content_type="multipart/form-data")


@pytest.fixture
def scaled(app, vt_emulator, monkeypatch):
    """Quota windows of MINUTE seconds everywhere: the emulator, this app and the workers."""
    vt_emulator.configure(minute_seconds=MINUTE)
    for name, value in SCALED.items():
        monkeypatch.setitem(app.config, name, float(value))
    return SCALED


def test_text_upload_collapses_duplicates_and_lists_invalid_lines(client, user, add_key):
    add_key(user)
    text = "\n".join(
        [
            "# indicators from ticket 1234",
            "8.8.8.8",
            "Example.COM",
            "",
            "example.com",
            "not an indicator",
            "10.0.0.1",
            "44D88612FEA8A8F36DE82E1278ABB02F",
            "hxxp://evil[.]example[.]net/x",
        ]
    )

    response = submit(client, user, text)

    assert response.status_code == 202, response.json
    body = response.json
    assert body["status"] == "pending" and body["message"] == "Bulk job submitted successfully"
    assert body["total_iocs"] == 4 and body["duplicate_count"] == 1 and body["invalid_count"] == 2
    assert [(i["line"], i["value"]) for i in body["invalid_lines"]] == [(6, "not an indicator"), (7, "10.0.0.1")]
    assert body["invalid_lines"][1]["reason"].startswith("10.0.0.1 is a private address")
    uuid.UUID(body["job_id"])
    assert response.headers["Location"] == f"/api/bulk/{body['job_id']}"


def test_csv_uses_the_ioc_column_or_the_first_column(client, user, add_key):
    add_key(user)
    with_header = 'source,ioc,comment\nfeed,8.8.8.8,"dns, google"\nfeed,example.org,\nfeed,,empty\n'
    without = "1.1.1.1,first\nexample.net,second\n"

    first = submit(client, user, with_header, "feed.csv")
    second = submit(client, user, without, "list.csv")

    assert first.status_code == 202 and first.json["total_iocs"] == 2
    assert first.json["invalid_lines"] == [{"line": 4, "value": "", "reason": first.json["invalid_lines"][0]["reason"]}]
    assert second.status_code == 202 and second.json["total_iocs"] == 2 and second.json["invalid_count"] == 0
    job = client.get(f"/api/bulk/{first.json['job_id']}", headers=user.headers).json
    assert [(r["line"], r["ioc"]) for r in job["results"]] == [(2, "8.8.8.8"), (3, "example.org")]


def test_uploads_that_cannot_make_a_job_are_refused(app, client, user, add_key, monkeypatch):
    assert submit(client, user, "8.8.8.8").json["error"]["code"] == "NO_ACTIVE_API_KEY"
    add_key(user)
    monkeypatch.setitem(app.config, "BULK_MAX_IOCS", 3)
    monkeypatch.setitem(app.config, "BULK_MAX_BYTES", 200)

    too_many = submit(client, user, "1.1.1.1\n8.8.8.8\n9.9.9.9\n8.8.4.4\n")
    too_big = submit(client, user, "\n".join(["8.8.8.8"] * 40))
    nothing_valid = submit(client, user, "nope\nstill nope\n")
    binary = client.post(
        "/api/bulk",
        data={"file": (io.BytesIO(b"\x00\x01\x02"), "x.bin")},
        headers=user.headers,
        content_type="multipart/form-data",
    )
    no_file = client.post("/api/bulk", data={}, headers=user.headers, content_type="multipart/form-data")

    assert too_many.status_code == 400 and "More than 3 indicators" in too_many.json["error"]["message"]
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert nothing_valid.status_code == 400 and nothing_valid.json["error"]["code"] == "IOC_VALIDATION_ERROR"
    assert [i["line"] for i in nothing_valid.json["error"]["details"]["invalid_lines"]] == [1, 2]
    assert binary.status_code == 400 and no_file.status_code == 400
    assert submit(client, user, "1.1.1.1\n8.8.8.8\n9.9.9.9\n8.8.8.8\n").status_code == 202  # 3 unique


def test_a_text_list_whose_first_line_is_huge_is_read_not_a_500(client, user, add_key):
    add_key(user)
    # Over the csv module's field limit: sniffing it for a header row must not crash the upload.
    text = "x" * 200_000 + "\n8.8.8.8\n"

    response = submit(client, user, text)

    assert response.status_code == 202, response.json
    assert response.json["total_iocs"] == 1 and response.json["invalid_count"] == 1
    assert response.json["invalid_lines"][0]["line"] == 1


def test_an_admin_reads_another_users_job_but_cannot_cancel_it(client, user, make_admin, add_key):
    add_key(user)
    job_id = submit(client, user, "8.8.8.8\nexample.org\n").json["job_id"]
    admin = make_admin()

    assert client.get(f"/api/bulk/{job_id}", headers=admin.headers).status_code == 200
    refused = client.delete(f"/api/bulk/{job_id}", headers=admin.headers)

    assert refused.status_code == 403 and refused.json["error"]["code"] == "AUTHORIZATION_ERROR"
    assert client.get(f"/api/bulk/{job_id}", headers=user.headers).json["status"] != "cancelled"
    assert client.delete(f"/api/bulk/{job_id}", headers=user.headers).json["status"] == "cancelled"


def test_job_results_page_export_and_owner_only(app, client, user, make_user, add_key, vt_emulator, worker):
    key = add_key(user)
    store_reports(app, {("domain", "bad.example.org"): domain_report("bad.example.org", malicious=9)})
    before = vt_emulator.total(key["key_value"])
    job_id = submit(client, user, "bad.example.org\n8.8.8.8\n" + "0" * 64 + "\n=cmd.example.com\n").json["job_id"]

    job = wait_for_job(client, user, job_id)

    assert job["status"] == "completed", job
    assert (job["total_iocs"], job["processed_iocs"], job["completed_iocs"], job["failed_iocs"]) == (3, 3, 3, 0)
    results = {row["ioc"]: row for row in job["results"]}
    assert results["bad.example.org"]["verdict"] == "malicious" and results["bad.example.org"]["source"] == "database"
    assert results["8.8.8.8"]["verdict"] == "clean" and results["8.8.8.8"]["source"] == "virustotal"
    assert results["0" * 64]["verdict"] == "unknown" and results["0" * 64]["provider_status"] == "not_found"
    assert vt_emulator.total(key["key_value"]) - before == 2
    assert job["invalid_lines"][0]["line"] == 4

    page = client.get(f"/api/bulk/{job_id}?per_page=1&page=2", headers=user.headers).json
    assert [r["ioc"] for r in page["results"]] == ["8.8.8.8"] and page["pagination"]["total_pages"] == 3
    only_clean = client.get(f"/api/bulk/{job_id}?status=failed", headers=user.headers).json
    assert only_clean["results"] == []
    assert client.get(f"/api/bulk/{job_id}?status=odd", headers=user.headers).status_code == 400

    exported = client.get(f"/api/bulk/{job_id}/export?format=csv", headers=user.headers)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [r["ioc"] for r in rows] == ["bad.example.org", "8.8.8.8", "0" * 64]
    assert rows[0]["verdict"] == "malicious" and rows[0]["line"] == "1"
    as_json = json.loads(client.get(f"/api/bulk/{job_id}/export?format=json", headers=user.headers).data)
    assert as_json["job"]["completed_iocs"] == 3 and len(as_json["results"]) == 3

    stranger = make_user()
    assert client.get(f"/api/bulk/{job_id}", headers=stranger.headers).status_code == 404
    assert client.get(f"/api/bulk/{job_id}/export", headers=stranger.headers).status_code == 404
    assert client.delete(f"/api/bulk/{job_id}", headers=stranger.headers).status_code == 404
    assert client.delete(f"/api/bulk/{job_id}", headers=user.headers).status_code == 409
    listed = client.get("/api/bulk", headers=user.headers).json
    assert [j["id"] for j in listed["jobs"]] == [job_id]


def test_cancel_keeps_answers_and_stops_the_rest(app, client, user, add_key, vt_emulator, scaled, start_worker):
    key = add_key(user, per_minute=2)
    known = {("domain", f"known{i}.example.org"): domain_report(f"known{i}.example.org") for i in range(5)}
    store_reports(app, known)
    lines = [value for _, value in known] + [f"new{i}.example.org" for i in range(20)]
    job_id = submit(client, user, "\n".join(lines)).json["job_id"]
    start_worker(**scaled)
    wait_for_job(client, user, job_id, until=lambda body: body["completed_iocs"] >= 6)

    cancelled = client.delete(f"/api/bulk/{job_id}", headers=user.headers)

    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["cancelled_iocs"] > 0
    assert cancelled.json["completed_iocs"] + cancelled.json["cancelled_iocs"] == 25
    spent = vt_emulator.total(key["key_value"])
    job = wait_for_job(client, user, job_id, until=lambda body: body["pending_iocs"] == 0)
    assert job["status"] == "cancelled"
    assert client.delete(f"/api/bulk/{job_id}", headers=user.headers).status_code == 200  # already cancelled
    # At most the request in flight when it was cancelled follows.
    assert vt_emulator.total(key["key_value"]) - spent <= 1


def test_a_job_survives_a_worker_killed_mid_way(app, client, user, add_key, vt_emulator, scaled, start_worker):
    key = add_key(user, per_minute=4)
    lines = [f"survivor{i}.example.org" for i in range(12)]
    job_id = submit(client, user, "\n".join(lines)).json["job_id"]
    recovery = {
        **scaled,
        "LOOKUP_LEASE_SECONDS": "2",
        "LOOKUP_SWEEP_SECONDS": "0.5",
        "LOOKUP_STUCK_GRACE_SECONDS": "0.5",
    }
    first = start_worker(**recovery)
    wait_for_job(client, user, job_id, until=lambda body: body["completed_iocs"] >= 2)

    first.kill()
    start_worker(beat=True, **recovery)
    job = wait_for_job(client, user, job_id)

    assert job["status"] == "completed" and job["completed_iocs"] == 12, job
    assert 429 not in vt_emulator.statuses(key["key_value"])
    # Nothing answered twice: at most the one item in flight when the worker died is asked again.
    asked = vt_emulator.counts(key["key_value"])["GET /domains/{id}"]
    assert 12 <= asked <= 13


def test_a_thousand_lines_known_ones_at_once_the_rest_at_the_budgets_pace(
    app, client, user, add_key, vt_emulator, scaled, start_worker
):
    from scanner.extensions import db
    from scanner.lookups.models import BulkItem

    key = add_key(user, per_minute=4)
    known: dict[tuple[str, str], dict] = {}
    for i in range(600):
        known[("domain", f"seen{i}.example.org")] = domain_report(f"seen{i}.example.org", malicious=i % 3)
    for i in range(200):
        ip = f"23.{i // 200}.{i % 200}.7"
        known[("ip", ip)] = {"type": "ip_address", "id": ip, "attributes": {"last_analysis_stats": {"harmless": 70}}}
    for i in range(100):
        sha256 = f"{i:064x}"
        known[("file", sha256)] = {
            "type": "file",
            "id": sha256,
            "attributes": {"last_analysis_stats": {"malicious": 5}},
        }
    store_reports(app, known)
    unknown = [f"fresh{i}.example.net" for i in range(80)] + [f"{i + 1:032x}" for i in range(20)]  # 20 md5s
    lines = [value for _, value in known] + unknown
    assert len(lines) == 1000
    before = vt_emulator.total(key["key_value"])

    response = submit(client, user, "\n".join(lines), "big.txt")
    assert response.status_code == 202 and response.json["total_iocs"] == 1000
    job_id = response.json["job_id"]
    start_worker(**scaled)
    job = wait_for_job(client, user, job_id)

    assert job["status"] == "completed", job
    assert job["completed_iocs"] == 1000 and job["failed_iocs"] == 0
    # Every unknown indicator cost exactly one request, every known one none, and no 429 ever.
    assert vt_emulator.total(key["key_value"]) - before == 100
    assert 429 not in vt_emulator.statuses(key["key_value"])
    with app.app_context():
        sources = dict(
            db.session.execute(
                select(BulkItem.source, func.count())
                .where(BulkItem.job_id == uuid.UUID(job_id))
                .group_by(BulkItem.source)
            ).all()
        )
        # The known ones were all answered before VirusTotal was asked anything.
        last_known = db.session.scalar(
            select(func.max(BulkItem.finished_at)).where(
                BulkItem.job_id == uuid.UUID(job_id), BulkItem.source == "database"
            )
        )
        first_asked = db.session.scalar(
            select(func.min(BulkItem.finished_at)).where(
                BulkItem.job_id == uuid.UUID(job_id), BulkItem.source == "virustotal"
            )
        )
        db.session.remove()
    assert sources == {"database": 900, "virustotal": 100}
    assert last_known <= first_asked


def test_an_item_whose_answer_returns_after_the_cancel_stays_cancelled(
    app, client, user, add_key, vt_emulator, start_worker
):
    key = add_key(user)
    # The first request is held in flight while the job is cancelled; its answer ("try again")
    # then writes its item back as pending, after the cancel has settled the job's items.
    vt_emulator.set_faults(transient_next=1)
    spent = vt_emulator.total(key["key_value"])
    vt_emulator.hold()
    job_id = submit(client, user, "\n".join(f"late{i}.example.org" for i in range(3))).json["job_id"]
    start_worker()
    wait_for_job(client, user, job_id, until=lambda body: vt_emulator.held == 1)

    assert client.delete(f"/api/bulk/{job_id}", headers=user.headers).json["status"] == "cancelled"
    vt_emulator.release()
    wait_for_job(client, user, job_id, until=lambda body: _late_answer_recorded(app, job_id))
    job = wait_for_job(client, user, job_id, until=lambda body: body["pending_iocs"] == 0, limit=20)

    assert job["status"] == "cancelled"
    assert job["cancelled_iocs"] == 3
    assert vt_emulator.total(key["key_value"]) - spent == 1  # only the request in flight when it was cancelled


def _late_answer_recorded(app, job_id: str) -> bool:
    """The worker has written the late answer's retry note on its item."""
    from scanner.extensions import db
    from scanner.lookups.models import BulkItem

    with app.app_context():
        try:
            query = select(func.count()).where(BulkItem.job_id == uuid.UUID(job_id), BulkItem.error.is_not(None))
            return db.session.scalar(query) > 0
        finally:
            db.session.remove()

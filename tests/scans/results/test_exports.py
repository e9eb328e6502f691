"""GET /api/scan/{scan_id}/export and GET /api/scan/results/export: JSON, CSV and PDF downloads."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from urllib.parse import unquote

import pytest
from pypdf import PdfReader

from .factory import BASE_DATE, engines, make_file, make_scan


def _export(client, user, scan, fmt: str):
    r = client.get(f"/api/scan/{scan.id}/export?format={fmt}", headers=user.headers)
    assert r.status_code == 200, r.data[:500]
    return r


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_json_export_is_the_full_report_as_a_download(client, db, user):
    scan = make_scan(user, engines=engines(malicious=3, undetected=10))
    db.session.commit()
    report = client.get(f"/api/scan/{scan.id}/results", headers=user.headers).json

    r = _export(client, user, scan, "json")

    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Content-Disposition"].startswith(f'attachment; filename="scan-{scan.id}.json"')
    body = json.loads(r.data)
    assert body.pop("generated_at")
    assert body == report
    assert len(body["results"]) == 13


def test_json_is_the_default_format(client, db, user):
    scan = make_scan(user)
    db.session.commit()

    r = client.get(f"/api/scan/{scan.id}/export", headers=user.headers)

    assert r.status_code == 200 and json.loads(r.data)["scan_id"] == str(scan.id)


def test_csv_export_has_one_row_per_engine_and_round_trips(client, db, user):
    # Commas, quotes and a line break in a name must survive the trip through a CSV reader.
    file = make_file(user, 'report, "final"\nv2.exe')
    scan = make_scan(user, file, engines=engines(malicious=2, suspicious=1, undetected=70))
    db.session.commit()

    r = _export(client, user, scan, "csv")

    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith(f'attachment; filename="scan-{scan.id}.csv"')
    rows = _csv_rows(r.data)
    assert len(rows) == 73
    assert list(rows[0]) == [
        "scan_id",
        "filename",
        "sha256",
        "scan_date",
        "engine_name",
        "engine_version",
        "update_date",
        "category",
        "result",
        "method",
    ]
    assert {row["filename"] for row in rows} == {'report, "final"\nv2.exe'}
    assert {row["sha256"] for row in rows} == {file.sha256}
    first = next(row for row in rows if row["engine_name"] == "Engine-000")
    assert (first["category"], first["result"], first["update_date"]) == ("malicious", "Trojan.Generic", "2024-03-01")
    assert sorted(row["category"] for row in rows).count("suspicious") == 1


@pytest.mark.parametrize(
    "payload", ['=HYPERLINK("http://evil")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"]
)
def test_csv_cells_that_would_run_as_formulas_are_defused(client, db, user, payload):
    file = make_file(user, payload)
    scan = make_scan(user, file, engines=[("Engine-x", "malicious", payload)])
    db.session.commit()

    rows = _csv_rows(_export(client, user, scan, "csv").data)

    assert rows[0]["filename"] == "'" + payload
    assert rows[0]["result"] == "'" + payload
    assert rows[0]["engine_name"] == "Engine-x"  # ordinary text is left alone


def test_pdf_report_carries_file_hashes_verdict_and_every_engine_across_pages(client, db, user):
    file = make_file(user, "quarterly-invoice.pdf.exe", content=b"pretend malware")
    panel = engines(malicious=4, suspicious=1, undetected=68, harmless=2, timeout=1)
    scan = make_scan(user, file, engines=panel)
    db.session.commit()

    r = _export(client, user, scan, "pdf")

    assert r.headers["Content-Type"] == "application/pdf"
    assert r.headers["Content-Disposition"].startswith(f'attachment; filename="scan-{scan.id}.pdf"')
    assert r.data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(r.data))
    pages = [page.extract_text() for page in reader.pages]
    text = "\n".join(pages)
    assert len(pages) >= 3  # the summary, then 76 engines over more than one page
    for expected in ("quarterly-invoice.pdf.exe", file.md5, file.sha1, file.sha256, "MALICIOUS", "4/75", "15 bytes"):
        assert expected in text, expected
    for name, _, _ in panel:
        assert name in text, name
    assert all(f"Page {i} of {len(pages)}" in page for i, page in enumerate(pages, start=1))
    assert all("Generated " in page for page in pages)
    # The table header is repeated on every page the engine table runs over.
    assert sum("Updated" in page for page in pages) >= 2


@pytest.mark.parametrize(
    ("counts", "word"),
    [({"undetected": 70}, "CLEAN"), ({"suspicious": 2, "undetected": 68}, "SUSPICIOUS"), ({"timeout": 70}, "UNKNOWN")],
)
def test_pdf_states_the_verdict(client, db, user, counts, word):
    scan = make_scan(user, **counts)
    db.session.commit()

    text = PdfReader(io.BytesIO(_export(client, user, scan, "pdf").data)).pages[0].extract_text()

    assert word in text


@pytest.mark.parametrize("fmt", ["pdf", "json", "csv"])
def test_an_unfinished_scan_has_no_export_yet(client, db, user, fmt):
    scan = make_scan(user, status="scanning")
    db.session.commit()

    r = client.get(f"/api/scan/{scan.id}/export?format={fmt}", headers=user.headers)

    assert r.status_code == 409
    error = r.json["error"]
    assert (error["code"], error["type"], error["details"]) == (
        "SCAN_NOT_FINISHED",
        "ConflictError",
        {"status": "scanning"},
    )
    assert "not finished" in error["message"] and "waiting_for_analysis" not in error["message"]


def test_pdf_of_a_failed_scan_says_failed_and_why(client, db, user):
    scan = make_scan(user, status="failed", error="VirusTotal could not be reached (connection refused)")
    db.session.commit()

    text = PdfReader(io.BytesIO(_export(client, user, scan, "pdf").data)).pages[0].extract_text()

    assert "FAILED" in text and "UNKNOWN" not in text
    assert "The scan failed: VirusTotal could not be reached (connection refused)" in " ".join(text.split())


def test_pdf_engine_table_keeps_each_category_on_one_line(client, db, user):
    scan = make_scan(user, engines=engines(undetected=60, **{"type-unsupported": 10}))
    db.session.commit()

    pages = [page.extract_text() for page in PdfReader(io.BytesIO(_export(client, user, scan, "pdf").data)).pages]

    table = "\n".join(pages[1:])
    assert table.count("type-unsupported") == 10
    assert "type-unsupporte\n" not in table
    # The column of signature dates is headed as what it is.
    assert "Updated" in pages[1] and "Signatures" not in table


def test_non_ascii_and_markup_in_the_name_are_safe_in_headers_and_pdf(client, db, user):
    name = 'Отчёт <b>&"x".exe'
    scan = make_scan(user, make_file(user, name))
    db.session.commit()

    r = _export(client, user, scan, "pdf")

    disposition = r.headers["Content-Disposition"]
    disposition.encode("ascii")  # a header value must be plain ASCII
    fallback, star = disposition.split("; filename*=")
    assert fallback == f'attachment; filename="scan-{scan.id}.pdf"'
    assert star.startswith("UTF-8''")
    assert unquote(star[len("UTF-8''") :]) == "Отчёт <b>&_x_.exe.scan-report.pdf"
    assert name in PdfReader(io.BytesIO(r.data)).pages[0].extract_text()


def test_unsupported_format_is_400_and_bad_id_is_400(client, db, user):
    scan = make_scan(user)
    db.session.commit()

    r = client.get(f"/api/scan/{scan.id}/export?format=xlsx", headers=user.headers)
    assert r.status_code == 400 and "format" in r.json["error"]["message"]
    assert client.get("/api/scan/nope/export?format=csv", headers=user.headers).status_code == 400


def test_history_csv_export_applies_the_filters_and_sort(client, db, user):
    older = make_scan(user, malicious=2, undetected=60, scan_date=BASE_DATE)
    newer = make_scan(user, make_file(user, "=cmd.exe"), malicious=9, undetected=60, scan_date=BASE_DATE + timedelta(1))
    make_scan(user, undetected=62)
    db.session.commit()

    r = client.get("/api/scan/results/export?format=csv&verdict=malicious", headers=user.headers)

    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="scan-history-')
    assert (r.headers["X-Total-Count"], r.headers["X-Export-Truncated"]) == ("2", "false")
    rows = _csv_rows(r.data)
    assert [row["scan_id"] for row in rows] == [str(newer.id), str(older.id)]
    assert rows[0]["filename"] == "'=cmd.exe"
    assert (rows[0]["detection_ratio"], rows[0]["malicious"], rows[0]["verdict"]) == ("9/69", "9", "malicious")
    assert rows[1]["hash_sha256"] and rows[1]["permalink"].endswith(rows[1]["hash_sha256"])


def test_history_json_export_and_its_row_cap(app, client, db, user):
    scans = [make_scan(user, scan_date=BASE_DATE + timedelta(minutes=i)) for i in range(5)]
    db.session.commit()
    cap = app.config["RESULTS_EXPORT_MAX_ROWS"]
    app.config["RESULTS_EXPORT_MAX_ROWS"] = 3
    try:
        r = client.get("/api/scan/results/export?format=json&sort_by=scan_date&sort_order=asc", headers=user.headers)
    finally:
        app.config["RESULTS_EXPORT_MAX_ROWS"] = cap

    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert (r.headers["X-Total-Count"], r.headers["X-Export-Limit"], r.headers["X-Export-Truncated"]) == (
        "5",
        "3",
        "true",
    )
    body = json.loads(r.data)
    assert (body["total_items"], body["exported_items"], body["truncated"]) == (5, 3, True)
    assert [s["id"] for s in body["scans"]] == [str(s.id) for s in scans[:3]]
    assert body["scans"][0]["hash_md5"] == scans[0].file.md5


def test_history_export_rejects_pdf_and_paging(client, user):
    assert client.get("/api/scan/results/export?format=pdf", headers=user.headers).status_code == 400
    assert client.get("/api/scan/results/export?page=2", headers=user.headers).status_code == 400

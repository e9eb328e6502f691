"""GET /api/scan/results: filters, sorting and pagination of a user's own scans."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .factory import BASE_DATE, make_file, make_scan


def _history(client, user, query: str = "") -> dict:
    r = client.get(f"/api/scan/results?{query}", headers=user.headers)
    assert r.status_code == 200, r.json
    return r.json


def _ids(body: dict) -> list[str]:
    return [scan["id"] for scan in body["scans"]]


def test_seed_shape_and_pagination_block(client, db, user):
    scans = [make_scan(user, scan_date=BASE_DATE + timedelta(hours=i), malicious=i, undetected=60) for i in range(12)]
    db.session.commit()

    body = _history(client, user)

    assert body["pagination"] == {"page": 1, "per_page": 10, "total_pages": 2, "total_items": 12}
    item = body["scans"][0]
    newest = scans[-1]
    assert item["id"] == str(newest.id) and item["file_id"] == str(newest.file_id)
    assert {k: item[k] for k in ("filename", "status", "detection_ratio", "verdict")} == {
        "filename": "sample.exe",
        "status": "completed",
        "detection_ratio": "11/71",
        "verdict": "malicious",
    }
    assert item["scan_date"].startswith("2024-03-01T23:00:00")
    assert _history(client, user, "page=2")["pagination"]["page"] == 2
    assert len(_history(client, user, "page=2")["scans"]) == 2
    assert _history(client, user, "page=3")["scans"] == []


def test_pages_cover_every_scan_exactly_once_even_with_equal_dates(client, db, user):
    # The same VirusTotal report reused by many scans gives them one scan date.
    expected = {str(make_scan(user).id) for _ in range(23)} | {str(make_scan(user, status="pending").id)}
    db.session.commit()

    seen = []
    for page in (1, 2, 3, 4, 5):
        seen += _ids(_history(client, user, f"page={page}&per_page=5"))

    assert sorted(seen) == sorted(expected)


def test_default_sort_is_newest_first_with_pending_last(client, db, user):
    old = make_scan(user, scan_date=BASE_DATE)
    pending = make_scan(user, status="scanning")
    new = make_scan(user, scan_date=BASE_DATE + timedelta(days=1))
    db.session.commit()

    assert _ids(_history(client, user)) == [str(new.id), str(old.id), str(pending.id)]
    assert _ids(_history(client, user, "sort_by=scan_date&sort_order=asc")) == [
        str(old.id),
        str(new.id),
        str(pending.id),
    ]


def test_detection_ratio_sorts_by_malicious_then_engines_that_judged(client, db, user):
    low = make_scan(user, malicious=1, undetected=60)
    high_small_panel = make_scan(user, malicious=5, undetected=50)
    high_big_panel = make_scan(user, malicious=5, undetected=65)
    pending = make_scan(user, status="pending")
    db.session.commit()

    desc = _ids(_history(client, user, "sort_by=detection_ratio&sort_order=desc"))
    asc = _ids(_history(client, user, "sort_by=detection_ratio&sort_order=asc"))

    assert desc == [str(high_big_panel.id), str(high_small_panel.id), str(low.id), str(pending.id)]
    assert asc == [str(low.id), str(high_small_panel.id), str(high_big_panel.id), str(pending.id)]


def test_multi_key_sort(client, db, user):
    a = make_scan(user, malicious=2, undetected=60, scan_date=BASE_DATE + timedelta(days=2))
    b = make_scan(user, malicious=2, undetected=60, scan_date=BASE_DATE)
    c = make_scan(user, malicious=0, undetected=62, scan_date=BASE_DATE + timedelta(days=5))
    db.session.commit()

    body = _history(client, user, "sort_by=detection_ratio:desc,scan_date:asc")

    assert _ids(body) == [str(b.id), str(a.id), str(c.id)]


def test_sort_by_filename_and_created_at(client, db, user):
    zeta = make_scan(user, make_file(user, "zeta.bin"), created_at=BASE_DATE)
    alpha = make_scan(user, make_file(user, "Alpha.bin"), created_at=BASE_DATE + timedelta(hours=1))
    db.session.commit()

    assert _ids(_history(client, user, "sort_by=filename&sort_order=asc")) == [str(alpha.id), str(zeta.id)]
    assert _ids(_history(client, user, "sort_by=created_at&sort_order=asc")) == [str(zeta.id), str(alpha.id)]


def test_filters_status_verdict_and_detection_range(client, db, user):
    clean = make_scan(user, undetected=60)
    suspicious = make_scan(user, suspicious=1, undetected=60)
    few = make_scan(user, malicious=2, undetected=60)
    many = make_scan(user, malicious=30, undetected=30)
    failed = make_scan(user, status="failed", error="boom")
    running = make_scan(user, status="scanning")
    db.session.commit()

    def ids(query: str) -> set[str]:
        return set(_ids(_history(client, user, query)))

    assert ids("status=failed") == {str(failed.id)}
    assert ids("status=failed,scanning") == {str(failed.id), str(running.id)}
    assert ids("verdict=malicious") == {str(few.id), str(many.id)}
    assert ids("verdict=suspicious") == {str(suspicious.id)}
    assert ids("verdict=clean") == {str(clean.id)}
    assert ids("verdict=unknown") == {str(failed.id), str(running.id)}
    assert ids("detection_min=1&detection_max=5") == {str(few.id)}
    assert ids("detection_min=10") == {str(many.id)}
    assert ids("detection_max=0") == {str(clean.id), str(suspicious.id)}


def test_date_range_is_inclusive_and_a_bare_date_means_the_whole_day(client, db, user):
    before = make_scan(user, scan_date=BASE_DATE - timedelta(days=1))
    morning = make_scan(user, scan_date=BASE_DATE.replace(hour=0, minute=0))
    evening = make_scan(user, scan_date=BASE_DATE.replace(hour=23, minute=59))
    make_scan(user, status="pending")
    db.session.commit()

    def ids(query: str) -> set[str]:
        return set(_ids(_history(client, user, query)))

    assert ids("date_from=2024-03-01&date_to=2024-03-01") == {str(morning.id), str(evening.id)}
    assert ids("date_to=2024-03-01T00:00:00Z") == {str(before.id), str(morning.id)}
    assert ids("date_from=2024-03-01T12:00:00%2B00:00") == {str(evening.id)}
    assert ids("date_from=2024-03-01T09:00:00%2B09:00&date_to=2024-03-01T00:00:00") == {str(morning.id)}


def test_filename_substring_matches_any_case_and_takes_wildcards_literally(client, db, user):
    invoice = make_scan(user, make_file(user, "Q3-INVOICE.pdf.exe"))
    percent = make_scan(user, make_file(user, "100%_sure.doc"))
    make_scan(user, make_file(user, "report.pdf"))
    db.session.commit()

    assert _ids(_history(client, user, "filename=invoice")) == [str(invoice.id)]
    assert _ids(_history(client, user, "filename=100%25_")) == [str(percent.id)]
    assert _ids(_history(client, user, "filename=%25")) == [str(percent.id)]


def test_hash_prefix_matches_sha256_sha1_or_md5(client, db, user):
    file = make_file(user, "x.bin", content=b"known content")
    scan = make_scan(user, file)
    make_scan(user)
    db.session.commit()

    for prefix in (file.sha256[:4], file.sha256[:40].upper(), file.sha256, file.sha1[:12], file.md5[:8]):
        assert _ids(_history(client, user, f"hash={prefix}")) == [str(scan.id)], prefix


@pytest.mark.parametrize(
    ("query", "found"),
    [
        # A range that ends before it starts is a filter no scan meets, as the OpenAPI document
        # (which cannot relate two parameters) lets a client send.
        ("detection_min=5&detection_max=2", False),
        ("date_from=2024-03-02&date_to=2024-03-01", False),
        # Any date-time RFC 3339 can write is read; past what the database holds, the bound is
        # the nearest it can hold.
        ("date_to=9999-12-31", True),
        ("date_to=9999-12-31T23:00:00-02:00", True),
        ("date_from=0001-01-01T00:00:00%2B14:00", True),
    ],
)
def test_ranges_are_filters_not_errors(client, db, user, query, found):
    scan = make_scan(user, malicious=3)
    db.session.commit()

    assert _ids(_history(client, user, query)) == ([str(scan.id)] if found else [])


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("per_page=101", "per_page"),
        ("per_page=0", "per_page"),
        ("page=0", "page"),
        ("sort_by=file_size", "Unknown sort key 'file_size'"),
        ("sort_by=scan_date:sideways", "must be asc or desc"),
        ("sort_by=scan_date,scan_date:asc", "given twice"),
        ("sort_order=up", "sort_order"),
        ("status=done", "status"),
        ("verdict=evil", "verdict"),
        ("detection_min=-1", "detection_min"),
        ("date_from=yesterday", "date_from"),
        ("hash=abc", "hex"),
        ("hash=zzzz1234", "hex"),
        ("filename=", "filename"),
        ("colour=red", "colour"),
        # Out of range for the database: refused, not a driver overflow answered with 500.
        ("page=99999999999999999999", "page"),
        ("page=9223372036854775807", "page"),
        ("detection_min=99999999999999999999", "detection_min"),
        ("detection_max=9223372036854775808", "detection_max"),
    ],
)
def test_invalid_query_is_400_with_the_reason(client, user, query, reason):
    r = client.get(f"/api/scan/results?{query}", headers=user.headers)

    assert r.status_code == 400, r.json
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert reason in r.json["error"]["message"]


def test_a_user_sees_only_their_own_scans_admins_too(client, db, make_user, make_admin):
    owner, other, admin = make_user(), make_user(), make_admin()
    make_scan(owner)
    mine = make_scan(other)
    db.session.commit()

    assert _ids(_history(client, other)) == [str(mine.id)]
    assert _history(client, admin)["pagination"]["total_items"] == 0
    assert client.get("/api/scan/results").status_code == 401

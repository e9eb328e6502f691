"""GET /api/scan/file/{file_id} and GET /api/scan/user/{user_id}."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from .factory import BASE_DATE, make_file, make_scan


def test_file_scans_list_every_scan_of_the_file_oldest_first(client, db, user):
    file = make_file(user)
    first = make_scan(user, file, malicious=2, undetected=68, scan_date=BASE_DATE)
    second = make_scan(user, file, malicious=3, undetected=67, scan_date=BASE_DATE + timedelta(days=1))
    make_scan(user)  # another file
    db.session.commit()

    r = client.get(f"/api/scan/file/{file.id}", headers=user.headers)

    assert r.status_code == 200, r.json
    assert [(s["id"], s["status"], s["detection_ratio"]) for s in r.json] == [
        (str(first.id), "completed", "2/70"),
        (str(second.id), "completed", "3/70"),
    ]
    assert r.json[1]["scan_date"].startswith("2024-03-02T12:00:00")


def test_file_scans_of_a_file_never_scanned_is_an_empty_list(client, db, user):
    file = make_file(user)
    db.session.commit()

    r = client.get(f"/api/scan/file/{file.id}", headers=user.headers)

    assert (r.status_code, r.json) == (200, [])


def test_file_scans_errors(client, user):
    assert client.get("/api/scan/file/123", headers=user.headers).status_code == 400
    assert client.get(f"/api/scan/file/{uuid.uuid4()}", headers=user.headers).status_code == 404


def test_user_scans_of_oneself_with_paging_header(client, db, user):
    scans = [make_scan(user, scan_date=BASE_DATE + timedelta(hours=i)) for i in range(3)]
    db.session.commit()

    r = client.get(f"/api/scan/user/{user.id}?per_page=2", headers=user.headers)

    assert r.status_code == 200, r.json
    assert [s["id"] for s in r.json] == [str(scans[2].id), str(scans[1].id)]
    assert set(r.json[0]) >= {"id", "file_id", "status", "detection_ratio", "scan_date"}
    assert json.loads(r.headers["X-Pagination"]) == {"page": 1, "per_page": 2, "total_pages": 2, "total_items": 3}
    assert r.headers["X-Total-Count"] == "3"


def test_user_scans_takes_the_history_filters(client, db, user):
    bad = make_scan(user, malicious=4, undetected=60)
    make_scan(user, undetected=64)
    db.session.commit()

    r = client.get(f"/api/scan/user/{user.id}?verdict=malicious", headers=user.headers)

    assert [s["id"] for s in r.json] == [str(bad.id)]
    assert client.get(f"/api/scan/user/{user.id}?per_page=500", headers=user.headers).status_code == 400


def test_user_scans_of_another_user_is_403_for_users_and_allowed_for_admins(client, db, make_user, make_admin):
    owner, other, admin = make_user(), make_user(), make_admin()
    scan = make_scan(owner)
    db.session.commit()

    r = client.get(f"/api/scan/user/{owner.id}", headers=other.headers)
    assert r.status_code == 403 and r.json["error"]["code"] == "AUTHORIZATION_ERROR"
    # Not knowing whether an id exists is part of not being allowed to look.
    assert client.get(f"/api/scan/user/{uuid.uuid4()}", headers=other.headers).status_code == 403

    r = client.get(f"/api/scan/user/{owner.id}", headers=admin.headers)
    assert r.status_code == 200 and [s["id"] for s in r.json] == [str(scan.id)]
    assert client.get(f"/api/scan/user/{uuid.uuid4()}", headers=admin.headers).status_code == 404


def test_user_scans_malformed_id_is_400(client, user):
    r = client.get("/api/scan/user/me", headers=user.headers)

    assert r.status_code == 400 and r.json["error"]["code"] == "VALIDATION_ERROR"

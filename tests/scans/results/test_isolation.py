"""A second user gets 404 (403 for /user/{id}) on every one of these endpoints for the first
user's objects: exactly what a missing object gets, so ids leak nothing."""

from __future__ import annotations

import pytest

from .factory import engines, make_scan

PATHS = [
    "/api/scan/{scan}/results",
    "/api/scan/{scan}/export?format=json",
    "/api/scan/{scan}/export?format=csv",
    "/api/scan/{scan}/export?format=pdf",
    "/api/scan/file/{file}",
]


@pytest.mark.parametrize("path", PATHS)
def test_another_users_objects_are_not_found(client, db, make_user, path):
    owner, intruder = make_user(), make_user()
    scan = make_scan(owner, engines=engines(malicious=1, undetected=5))
    db.session.commit()
    url = path.format(scan=scan.id, file=scan.file_id)
    assert client.get(url, headers=owner.headers).status_code == 200  # the owner reads it

    r = client.get(url, headers=intruder.headers)

    assert r.status_code == 404 and r.json["error"]["code"] == "NOT_FOUND"


def test_another_users_scan_list_is_forbidden(client, db, make_user):
    owner, intruder = make_user(), make_user()
    make_scan(owner)
    db.session.commit()

    assert client.get(f"/api/scan/user/{owner.id}", headers=intruder.headers).status_code == 403


def test_history_and_its_export_never_include_another_users_scans(client, db, make_user):
    owner, intruder = make_user(), make_user()
    make_scan(owner)
    db.session.commit()

    assert client.get("/api/scan/results", headers=intruder.headers).json["scans"] == []
    r = client.get("/api/scan/results/export?format=json", headers=intruder.headers)
    assert r.get_json()["scans"] == [] and r.get_json()["total_items"] == 0

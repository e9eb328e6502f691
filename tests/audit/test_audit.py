"""The audit trail: security-relevant actions recorded with actor, address, target and outcome,
in the action's own transaction, readable by admins only, never holding a secret."""

from __future__ import annotations

import json

from tests.assertions import assert_error
from tests.auth.conftest import fresh_address


def events(client, admin, **filters) -> list[dict]:
    r = client.get("/api/admin/audit", query_string={"per_page": 200, **filters}, headers=admin.headers)
    assert r.status_code == 200, r.json
    return r.json["events"]


def test_sign_ins_sign_outs_and_password_changes_are_recorded(client, make_user, make_admin):
    user = make_user()
    address = fresh_address()
    wrong = client.post(
        "/api/auth/login",
        json={"username": user.username, "password": "Wrong-Horse-42"},
        environ_base={"REMOTE_ADDR": address},
    )
    assert wrong.status_code == 401
    change = {"current_password": user.password, "new_password": "Another-Horse-77"}
    assert client.put("/api/auth/profile", json=change, headers=user.headers).status_code == 200
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200
    admin = make_admin()

    logins = events(client, admin, action="auth.login")
    failed = [e for e in logins if e["outcome"] == "failure"]
    assert len(failed) == 1
    assert failed[0]["actor_id"] is None and failed[0]["actor_name"] == user.username
    assert failed[0]["address"] == address
    assert failed[0]["details"]["code"] == "INVALID_CREDENTIALS"
    assert any(e["outcome"] == "success" and e["actor_id"] == user.id for e in logins)

    (changed,) = events(client, admin, action="auth.password_change")
    assert (changed["actor_id"], changed["target_id"], changed["outcome"]) == (user.id, user.id, "success")
    (logout,) = events(client, admin, action="auth.logout", actor_id=user.id)
    assert logout["request_id"] and logout["created_at"]

    # Passwords appear nowhere in the trail, nor tokens.
    trail = json.dumps(events(client, admin))
    for secret in (user.password, "Wrong-Horse-42", "Another-Horse-77", user.access_token):
        assert secret not in trail


def test_key_actions_are_recorded_without_the_key_value(client, user, add_key, make_admin):
    key = add_key(user)
    assert client.put(f"/api/keys/{key['id']}", json={"name": "renamed"}, headers=user.headers).status_code == 200
    assert client.post("/api/keys/validate", json={"key_value": key["key_value"]}, headers=user.headers).status_code
    assert client.delete(f"/api/keys/{key['id']}", headers=user.headers).status_code == 200
    missing = client.delete(f"/api/keys/{key['id']}", headers=user.headers)
    assert missing.status_code == 404
    admin = make_admin()

    key_events = events(client, admin, action="key")  # a family: every key.* action
    assert [(e["action"], e["outcome"]) for e in reversed(key_events)] == [
        ("key.create", "success"),
        ("key.update", "success"),
        ("key.validate", "success"),
        ("key.delete", "success"),
        ("key.delete", "failure"),
    ]
    assert all(e["actor_id"] == user.id for e in key_events)
    assert key_events[-1]["target_id"] == key["id"]
    assert key_events[-2]["details"] == {"fields": "name"}
    assert key["key_value"] not in json.dumps(events(client, admin))


def test_an_action_that_fails_leaves_no_success_event(client, user, make_admin):
    # The file does not exist: no scan, so no scan event either (one transaction for both).
    r = client.post("/api/scan/file/00000000-0000-0000-0000-000000000000", headers=user.headers)
    assert r.status_code == 404
    admin = make_admin()
    assert events(client, admin, action="scan") == []


def test_the_trail_is_for_admins_filtered_and_paginated(client, make_user, make_admin):
    user = make_user()
    admin = make_admin()
    assert_error(client.get("/api/admin/audit"), 401)
    assert_error(client.get("/api/admin/audit", headers=user.headers), 403)
    assert_error(client.get("/api/admin/audit?outcome=maybe", headers=admin.headers), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/admin/audit?since=yesterday", headers=admin.headers), 400, "VALIDATION_ERROR")

    first = client.get("/api/admin/audit?per_page=2&page=1", headers=admin.headers).json
    assert len(first["events"]) == 2
    total = first["pagination"]["total_items"]
    assert total >= 4  # two registrations, two sign-ins, the promotion
    assert first["pagination"]["total_pages"] == -(-total // 2)
    times = [e["created_at"] for e in first["events"]]
    assert times == sorted(times, reverse=True)
    # Reading the trail is itself an admin action on the trail.
    assert events(client, admin, action="admin.read_audit", actor_id=admin.id)
    assert events(client, admin, action="admin.set_role")[0]["target_id"] == admin.id


def test_the_scheduler_prunes_events_past_their_retention(app, client, user, make_admin):
    from datetime import timedelta

    from scanner.audit.models import AuditEvent
    from scanner.db_types import utcnow
    from scanner.extensions import db
    from scanner.housekeeping import prune_old_records

    with app.app_context():
        old = db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == "auth.register")).first()
        old.created_at = utcnow() - timedelta(days=app.config["AUDIT_RETENTION_DAYS"] + 1)
        old_id = old.id
        db.session.commit()
        counts = prune_old_records.run()
        assert counts["audit_events"] == 1
        assert db.session.get(AuditEvent, old_id) is None
        assert db.session.scalars(db.select(AuditEvent)).first() is not None  # the rest stays
        db.session.remove()


def test_uploads_deletes_scans_and_exports_are_recorded(client, user, add_key, make_admin):
    from tests.files.helpers import uploaded

    add_key(user)
    body = uploaded(client, user, b"audited upload\n")
    file_id, scan_id = body["id"], body["scan"]["scan_id"]
    assert client.post(f"/api/scan/file/{file_id}/rescan", headers=user.headers).status_code == 202
    assert client.get("/api/scan/results/export?format=csv", headers=user.headers).status_code == 200
    assert client.delete(f"/api/files/{file_id}", headers=user.headers).status_code == 200
    admin = make_admin()

    (uploaded_event,) = events(client, admin, action="file.upload")
    assert (uploaded_event["target_id"], uploaded_event["actor_id"]) == (file_id, user.id)
    assert uploaded_event["details"]["scan_id"] == scan_id
    (rescan,) = events(client, admin, action="scan.rescan")
    assert rescan["target_type"] == "scan"
    (export,) = events(client, admin, action="results.export")
    assert export["details"]["format"] == "csv"
    (deleted,) = events(client, admin, action="file.delete")
    assert deleted["target_id"] == file_id


def test_bulk_jobs_their_exports_and_cancels_are_recorded(client, user, add_key, make_admin):
    import io

    add_key(user)
    data = {"file": (io.BytesIO(b"audited-one.org\naudited-two.org\n"), "iocs.txt")}
    submitted = client.post("/api/bulk", data=data, headers=user.headers, content_type="multipart/form-data")
    assert submitted.status_code == 202, submitted.json
    job_id = submitted.json["job_id"]
    assert client.get(f"/api/bulk/{job_id}/export?format=json", headers=user.headers).status_code == 200
    assert client.delete(f"/api/bulk/{job_id}", headers=user.headers).status_code == 200
    admin = make_admin()

    (created,) = events(client, admin, action="bulk.create")
    assert (created["target_type"], created["target_id"], created["actor_id"]) == ("bulk_job", job_id, user.id)
    assert created["details"]["indicators"] == 2
    (export,) = events(client, admin, action="results.export")
    assert (export["target_type"], export["target_id"], export["details"]["format"]) == ("bulk_job", job_id, "json")
    (cancelled,) = events(client, admin, action="bulk.cancel")
    assert cancelled["target_id"] == job_id


def test_beat_prunes_old_events_and_expired_sessions_on_its_own(app, client, make_user, start_worker):
    import time
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from scanner.audit.models import AuditEvent
    from scanner.auth.models import RefreshToken, TokenFamily
    from scanner.db_types import utcnow
    from scanner.extensions import db

    user = make_user()
    assert client.post("/api/auth/logout", headers=user.headers).status_code == 200
    long_ago = utcnow() - timedelta(days=app.config["AUDIT_RETENTION_DAYS"] + 1)
    with app.app_context():
        db.session.execute(update(AuditEvent).where(AuditEvent.action == "auth.register").values(created_at=long_ago))
        db.session.execute(update(TokenFamily).values(expires_at=long_ago))  # the session signed out has expired
        db.session.commit()

        def left() -> tuple[int, int, int]:
            db.session.remove()
            registered = select(func.count()).where(AuditEvent.action == "auth.register")
            return tuple(
                db.session.scalar(q)
                for q in (
                    registered,
                    select(func.count()).select_from(TokenFamily),
                    select(func.count()).select_from(RefreshToken),
                )
            )

        assert left() == (1, 1, 1)
        start_worker(beat=True, PRUNE_INTERVAL_SECONDS="0.5")
        deadline = time.monotonic() + 30
        while left() != (0, 0, 0):
            assert time.monotonic() < deadline, left()
            time.sleep(0.2)
        # What is within its retention stays.
        assert db.session.scalar(select(func.count()).where(AuditEvent.action == "auth.logout")) == 1
        db.session.remove()

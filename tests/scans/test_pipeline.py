"""The scanning pipeline end to end: the API, a real Celery worker, the VirusTotal emulator over
HTTP. Emulator request counts prove what VirusTotal was asked, and how often."""

from __future__ import annotations

import os
import threading
import time
import uuid

from sqlalchemy import select

from tests.api_keys.helpers import closed_port_url
from tests.files.helpers import uploaded

from .helpers import EICAR, EICAR_SHA256, wait_for_scan

LOOKUP, UPLOAD, POLL = "GET /files/{id}", "POST /files", "GET /analyses/{id}"


def spent(vt_emulator, key: dict, before: dict[str, int] | None = None) -> dict[str, int]:
    """Requests the key made since `before` (adding a key costs one validation request)."""
    now = vt_emulator.counts(key["key_value"])
    before = before or {"GET /ip_addresses/{id}": 1}
    return {k: n - before.get(k, 0) for k, n in now.items() if n - before.get(k, 0)}


def engine_rows(app, scan_id: str) -> list:
    from scanner.extensions import db
    from scanner.scans.models import EngineResult

    with app.app_context():
        rows = db.session.execute(
            select(EngineResult.engine_name, EngineResult.category).where(EngineResult.scan_id == uuid.UUID(scan_id))
        ).all()
        db.session.remove()
    return rows


def test_eicar_upload_completes_with_every_engine_verdict(app, client, user, add_key, vt_emulator, worker):
    vt_emulator.configure(queued_seconds=0.3, progress_seconds=0.3)
    key = add_key(user)
    body = uploaded(client, user, EICAR, "eicar.com")
    assert body["hash_sha256"] == EICAR_SHA256
    assert body["scan"]["status"] == "scanning"

    status = wait_for_scan(client, user, body["scan"]["scan_id"])

    assert status["status"] == "completed", status
    malicious, total = map(int, status["detection_ratio"].split("/"))
    assert malicious > total / 2  # most engines flag the EICAR test file
    rows = engine_rows(app, body["scan"]["scan_id"])
    assert len(rows) >= 60
    assert len({name for name, _ in rows}) == len(rows)
    assert sum(1 for _, category in rows if category == "malicious") == malicious
    counts = spent(vt_emulator, key)
    assert counts[LOOKUP] == 1 and counts[UPLOAD] == 1 and counts[POLL] >= 1


def test_known_file_costs_exactly_one_request(client, user, add_key, vt_emulator, worker):
    content = b"a file VirusTotal has seen before\n"
    vt_emulator.add_file(content, verdict="malicious")
    key = add_key(user)

    status = wait_for_scan(client, user, uploaded(client, user, content)["scan"]["scan_id"])

    assert status["status"] == "completed"
    assert int(status["detection_ratio"].split("/")[0]) > 0
    assert spent(vt_emulator, key) == {LOOKUP: 1}


def test_a_report_fetched_recently_is_reused_without_any_request(client, user, add_key, vt_emulator, worker):
    content = b"scanned twice in one afternoon\n"
    vt_emulator.add_file(content)
    key = add_key(user)
    file_id = uploaded(client, user, content)["id"]
    wait_for_scan(client, user, client.get(f"/api/scan/file/{file_id}", headers=user.headers).json[0]["id"])
    before = vt_emulator.counts(key["key_value"])

    response = client.post(f"/api/scan/file/{file_id}", headers=user.headers)
    assert response.status_code == 202
    assert response.json["message"] == "Scan initiated successfully"
    status = wait_for_scan(client, user, response.json["scan_id"])

    assert status["status"] == "completed"
    assert spent(vt_emulator, key, before) == {}


def test_large_unknown_file_goes_through_upload_url_and_polls_back_off(
    client, user, add_key, vt_emulator, start_worker, tmp_path
):
    start_worker(SCAN_POLL_INTERVALS="0.3,0.6,1.2")
    vt_emulator.configure(queued_seconds=1.0, progress_seconds=1.0)
    key = add_key(user)
    content = os.urandom(40 * 1024 * 1024)

    status = wait_for_scan(client, user, uploaded(client, user, content, "big.iso")["scan"]["scan_id"])

    assert status["status"] == "completed", status
    counts = spent(vt_emulator, key)
    assert counts.get(UPLOAD, 0) == 0
    assert counts["GET /files/upload_url"] == 1 and counts["POST /_upload"] == 1
    polls = [entry.time for entry in vt_emulator.log if entry.endpoint == POLL]
    gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    assert len(polls) >= 2
    # Each wait is at least its step of the schedule: 0.6 s after the first poll, 1.2 s after that.
    for gap, floor in zip(gaps, (0.6, 1.2, 1.2, 1.2), strict=False):
        assert gap >= floor * 0.95, (gaps, floor)


def test_ten_concurrent_scans_of_one_new_file_by_three_users_ask_virustotal_once(
    client, make_user, add_key, vt_emulator, start_worker
):
    start_worker(concurrency=4)
    vt_emulator.configure(queued_seconds=0.5, progress_seconds=0.5)
    users = [make_user() for _ in range(3)]
    keys = [add_key(u) for u in users]
    content = b"brand new sample shared by three analysts\n" * 100
    files = [uploaded(client, u, content)["id"] for u in users]  # three scans start with the uploads

    started: list[str] = []
    lock = threading.Lock()

    def scan(u, file_id):
        response = client.post(f"/api/scan/file/{file_id}", headers=u.headers)
        assert response.status_code == 202
        with lock:
            started.append((u, response.json["scan_id"]))

    threads = [threading.Thread(target=scan, args=(users[i % 3], files[i % 3])) for i in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for u, file_id in zip(users, files, strict=True):
        for listed in client.get(f"/api/scan/file/{file_id}", headers=u.headers).json:
            started.append((u, listed["id"]))
    scans = {scan_id: u for u, scan_id in started}
    assert len(scans) == 10

    results = {scan_id: wait_for_scan(client, u, scan_id) for scan_id, u in scans.items()}

    assert {r["status"] for r in results.values()} == {"completed"}
    assert len({r["detection_ratio"] for r in results.values()}) == 1
    lookups = sum(vt_emulator.counts(k["key_value"]).get(LOOKUP, 0) for k in keys)
    uploads = sum(vt_emulator.counts(k["key_value"]).get(UPLOAD, 0) for k in keys)
    assert (lookups, uploads) == (1, 1)


def test_never_upload_keeps_the_file_private(client, user, add_key, vt_emulator, worker):
    key = add_key(user)
    body = uploaded(client, user, b"confidential incident artefact\n", never_upload=True)

    status = wait_for_scan(client, user, body["scan"]["scan_id"])

    assert status["status"] == "not_found"
    assert "upload" in status["error"]
    assert spent(vt_emulator, key) == {LOOKUP: 1}


def test_never_upload_as_the_users_default(client, user, add_key, vt_emulator, worker):
    key = add_key(user)
    response = client.put(
        "/api/auth/profile", json={"never_upload": True, "current_password": user.password}, headers=user.headers
    )
    assert response.status_code == 200, response.json

    status = wait_for_scan(client, user, uploaded(client, user, b"private by default\n")["scan"]["scan_id"])

    assert status["status"] == "not_found"
    assert "POST /files" not in vt_emulator.counts(key["key_value"])


def test_rescan_asks_for_a_new_analysis(client, user, add_key, vt_emulator, worker):
    vt_emulator.configure(queued_seconds=0.2, progress_seconds=0.2)
    content = b"known, but an analyst wants today's verdicts\n"
    vt_emulator.add_file(content)
    key = add_key(user)
    body = uploaded(client, user, content)
    first = wait_for_scan(client, user, body["scan"]["scan_id"])

    response = client.post(f"/api/scan/file/{body['id']}/rescan", headers=user.headers)
    assert response.status_code == 202
    assert response.json["message"] == "Rescan initiated successfully"
    second = wait_for_scan(client, user, response.json["scan_id"])

    assert first["status"] == second["status"] == "completed"
    assert second["scan_date"] >= first["scan_date"]
    assert vt_emulator.counts(key["key_value"])["POST /files/{id}/analyse"] == 1


def test_rescan_uploads_again_when_virustotal_lost_the_file(app, client, user, add_key, vt_emulator, worker):
    vt_emulator.configure(queued_seconds=0.2, progress_seconds=0.2)
    content = b"VirusTotal will forget this one\n"
    sha256 = vt_emulator.add_file(content)
    key = add_key(user)
    body = uploaded(client, user, content)
    wait_for_scan(client, user, body["scan"]["scan_id"])
    vt_emulator.forget_file(sha256)

    response = client.post(f"/api/scan/file/{body['id']}/rescan", headers=user.headers)
    status = wait_for_scan(client, user, response.json["scan_id"])

    assert status["status"] == "completed"
    assert vt_emulator.counts(key["key_value"])[UPLOAD] == 1


def test_transient_errors_and_timeouts_are_retried(client, user, add_key, vt_emulator, start_worker):
    start_worker(VT_READ_TIMEOUT="0.5")
    vt_emulator.configure(queued_seconds=0.2, progress_seconds=0.2)
    key = add_key(user)
    vt_emulator.set_faults(transient_next=2, drop_next=1, timeout_next=1, timeout_seconds=1.5)

    status = wait_for_scan(client, user, uploaded(client, user, b"survives a flaky VirusTotal\n")["scan"]["scan_id"])

    assert status["status"] == "completed", status
    statuses = vt_emulator.statuses(key["key_value"])
    assert statuses.get(503) == 2


def test_virustotal_unreachable_fails_soon_in_words_without_spending_quota(client, user, add_key, start_worker):
    key = add_key(user)
    closed = closed_port_url()
    start_worker(VT_API_URL=closed, VT_UNREACHABLE_RETRY_MAX_SECONDS="0.3")
    reason = f"VirusTotal could not be reached (connection refused by {closed.split('//')[1].split('/')[0]})"
    scan_id = uploaded(client, user, b"nobody can reach VirusTotal\n")["scan"]["scan_id"]

    seen = []
    while not seen or seen[-1]["status"] not in ("completed", "failed", "not_found"):
        seen.append(client.get(f"/api/scan/{scan_id}/status", headers=user.headers).json)
        time.sleep(0.05)

    assert seen[-1]["status"] == "failed"
    assert seen[-1]["error"].endswith(reason)
    waiting = [s["error"] for s in seen if s["status"] != "failed" and s["error"]]
    assert waiting and all(e.startswith(f"{reason}; retrying until ") for e in waiting), waiting
    # No attempt took a quota token, so the scan never waited for quota either.
    assert "waiting_for_quota" not in {s["stage"] for s in seen}
    usage = client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]["usage"]
    assert usage["day_used"] == 1  # the key's own check when it was added, nothing since
    assert not any("Pool" in s["error"] or "Errno" in s["error"] for s in seen if s["error"])


def test_deadline_passed_fails_with_a_reason(client, user, add_key, vt_emulator, start_worker):
    start_worker(SCAN_DEADLINE_SECONDS="1.5")
    vt_emulator.configure(queued_seconds=600, progress_seconds=600)
    add_key(user)

    status = wait_for_scan(client, user, uploaded(client, user, b"VirusTotal never finishes this\n")["scan"]["scan_id"])

    assert status["status"] == "failed"
    assert "did not finish" in status["error"]


def test_a_rejected_key_fails_the_scan_with_a_clear_reason(app, client, user, add_key, vt_emulator, worker):
    key = add_key(user)
    vt_emulator.reset()  # the emulator forgets the key: VirusTotal now answers 401

    status = wait_for_scan(client, user, uploaded(client, user, b"scanned with a revoked key\n")["scan"]["scan_id"])

    assert status["status"] == "failed"
    assert "key" in status["error"].lower()
    keys = client.get("/api/keys/", headers=user.headers).json["api_keys"]
    assert keys[0]["id"] == key["id"] and keys[0]["is_active"] is False


def test_worker_killed_mid_scan_still_completes_without_duplicates(
    app, client, user, add_key, vt_emulator, start_worker
):
    vt_emulator.configure(queued_seconds=2.0, progress_seconds=1.0)
    add_key(user)
    first = start_worker(SCAN_LEASE_SECONDS="1", SCAN_STUCK_GRACE_SECONDS="1")
    scan_id = uploaded(client, user, EICAR, "eicar.txt")["scan"]["scan_id"]
    for _ in range(300):
        stage = client.get(f"/api/scan/{scan_id}/status", headers=user.headers).json["stage"]
        if stage == "waiting_for_analysis":
            break
        threading.Event().wait(0.05)
    assert stage == "waiting_for_analysis"
    first.kill()

    start_worker(beat=True, SCAN_LEASE_SECONDS="1", SCAN_STUCK_GRACE_SECONDS="1", SCAN_SWEEP_SECONDS="0.5")
    status = wait_for_scan(client, user, scan_id)

    assert status["status"] == "completed"
    rows = engine_rows(app, scan_id)
    assert len(rows) == len({name for name, _ in rows}) >= 60


def test_quota_exhaustion_waits_instead_of_failing(app, client, user, add_key, vt_emulator, start_worker, monkeypatch):
    # A two-second "minute" everywhere: in the worker, in this process (which validates the key),
    # and in the emulator.
    monkeypatch.setitem(app.config, "VT_QUOTA_MINUTE_SECONDS", 2.0)
    monkeypatch.setitem(app.config, "VT_QUOTA_MARGIN_SECONDS", 0.2)
    start_worker(VT_QUOTA_MINUTE_SECONDS="2", VT_QUOTA_MARGIN_SECONDS="0.2")
    vt_emulator.configure(minute_seconds=2, queued_seconds=0, progress_seconds=0)
    key = add_key(user, per_minute=2)
    # Two new files need six requests (lookup, upload, poll each): three "minutes" at this budget.
    scan_ids = [uploaded(client, user, f"sample {i}\n".encode())["scan"]["scan_id"] for i in range(2)]

    results = [wait_for_scan(client, user, scan_id) for scan_id in scan_ids]

    assert {r["status"] for r in results} == {"completed"}
    assert 429 not in vt_emulator.statuses(key["key_value"])


def test_scan_rows_never_leak_between_users(client, make_user, add_key, vt_emulator):
    owner, other = make_user(), make_user()
    add_key(owner)
    body = uploaded(client, owner, b"mine\n")
    for method, path in (
        ("get", f"/api/scan/{body['scan']['scan_id']}/status"),
        ("post", f"/api/scan/file/{body['id']}"),
        ("post", f"/api/scan/file/{body['id']}/rescan"),
    ):
        response = getattr(client, method)(path, headers=other.headers)
        assert response.status_code == 404, (path, response.json)


def test_invalid_ids_are_400(client, user):
    assert client.get("/api/scan/not-a-uuid/status", headers=user.headers).status_code == 400
    assert client.post("/api/scan/file/not-a-uuid", headers=user.headers).status_code == 400


def test_scan_without_any_key_is_400(client, user):
    file_id = uploaded(client, user, b"no key yet\n")["id"]
    response = client.post(f"/api/scan/file/{file_id}", headers=user.headers)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "NO_ACTIVE_API_KEY"

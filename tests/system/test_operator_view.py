"""What an operator sees of a user's whole visit, served as deployed: gunicorn for the API and a
Celery worker with an instance folder of its own (another machine: no PROMETHEUS_MULTIPROC_DIR
shared with the web). The worker's counters reach the web's /metrics, one request id follows the
scan from the upload to its verdict, the logs are JSON, name every VirusTotal failure, retry and
quota wait, and hold no password, token or key."""

from __future__ import annotations

import json
import secrets
import time

import requests

from tests.system.test_prometheus import sample

UPLOAD_ID = "upload-trace-0017"


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _visit(url: str, key_value: str, before_upload) -> dict:
    """Register, sign in, add a key, upload a file, wait for its verdict, export it, sign out."""
    password = "Visiting-Horse-17"
    account = {"username": "visitor17", "email": "visitor17@example.com", "password": password}
    assert requests.post(f"{url}/api/auth/register", json=account, timeout=10).status_code == 201
    signed_in = requests.post(f"{url}/api/auth/login", json={"username": "visitor17", "password": password}, timeout=10)
    tokens = signed_in.json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    key = {"name": "visitor's key", "key_value": key_value, "per_minute": 2, "per_day": 1000}
    added = requests.post(f"{url}/api/keys/", json=key, headers=auth, timeout=30)
    assert added.status_code == 201, added.text
    before_upload()
    files = {"file": ("visit.bin", secrets.token_bytes(2048), "application/octet-stream")}
    upload = requests.post(
        f"{url}/api/files/upload", files=files, headers={**auth, "X-Request-ID": UPLOAD_ID}, timeout=30
    )
    assert upload.status_code == 201, upload.text
    scan_id = upload.json()["scan"]["scan_id"]
    deadline = time.monotonic() + 90
    status = {"status": "pending"}
    while status["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
        status = requests.get(f"{url}/api/scan/{scan_id}/status", headers=auth, timeout=10).json()
    assert status["status"] == "completed", status
    assert requests.get(f"{url}/api/scan/{scan_id}/export?format=csv", headers=auth, timeout=10).status_code == 200
    logout = requests.post(f"{url}/api/auth/logout", headers=auth, timeout=10)
    assert logout.status_code == 200
    secrets_seen = [password, tokens["access_token"], tokens["refresh_token"], key_value]
    return {"scan_id": scan_id, "user_id": tokens["user"]["id"], "secrets": secrets_seen}


def test_a_visit_as_the_operator_sees_it(app, vt_emulator, start_web, start_worker, make_admin, tmp_path):
    # A two-second quota "minute" for every process and a key allowed two requests in it: the scan
    # (hash lookup, upload, poll) must wait for quota at least once. The emulator's budget is wide.
    quick_quota = {"VT_QUOTA_MINUTE_SECONDS": "2", "VT_QUOTA_MARGIN_SECONDS": "0.2"}
    logs = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    vt_emulator.configure(queued_seconds=0, progress_seconds=0)
    server = start_web(**logs, **quick_quota)
    worker = start_worker(**logs, **quick_quota, INSTANCE_DIR=str(tmp_path / "worker"), BLOB_DIR=app.config["BLOB_DIR"])
    key_value = secrets.token_hex(32)
    vt_emulator.add_key(key_value, per_minute=1000, per_day=100000)
    before = requests.get(f"{server.url}/metrics", timeout=10).text
    # The key is checked on its way in; the worker's first call after that finds VirusTotal down.
    visit = _visit(server.url, key_value, before_upload=lambda: vt_emulator.set_faults(transient_next=1))
    scraped = requests.get(f"{server.url}/metrics", timeout=10).text
    worker.stop()

    def moved(name: str, **labels: str) -> float:
        return sample(scraped, name, **labels) - sample(before, name, **labels)

    # The worker's VirusTotal requests, retries and quota waits, counted on another "machine".
    assert moved("scanner_virustotal_requests_total", endpoint="POST /files", outcome="ok") == 1
    assert moved("scanner_virustotal_requests_total", endpoint="GET /files", outcome="TransientError") == 1
    assert moved("scanner_virustotal_requests_total", endpoint="GET /analyses", outcome="ok") >= 1
    assert moved("scanner_work_retries_total", work="scan", cause="virustotal") == 1
    assert moved("scanner_work_quota_waits_total", work="scan") >= 1
    # The web's own requests, the rows by state, and the key's quota by id, never by value.
    assert moved("scanner_http_requests_total", route="/api/files/upload", method="POST", status="201") == 1
    assert sample(scraped, "scanner_http_request_duration_seconds_count", route="/api/files/upload") >= 1
    assert sample(scraped, "scanner_scans", status="completed") == 1
    assert 'scanner_vt_quota_remaining{key_id="' in scraped and key_value not in scraped

    web_lines, worker_lines = _lines(server.logs_all()), _lines(worker.log_path.read_text())
    # One access line per request, with what an operator filters on.
    (upload,) = [
        line for line in web_lines if line["logger"] == "scanner.access" and line["route"] == "/api/files/upload"
    ]
    assert (upload["method"], upload["status"], upload["request_id"]) == ("POST", 201, UPLOAD_ID)
    assert upload["user_id"] == visit["user_id"] and upload["duration_ms"] >= 0
    # The upload's request id is on every worker line about the scan, down to its verdict.
    about_scan = [line for line in worker_lines if line.get("scan_id") == visit["scan_id"]]
    assert about_scan and {line.get("request_id") for line in about_scan} == {UPLOAD_ID}
    assert any(line["message"].startswith(f"scan {visit['scan_id']} completed") for line in about_scan)
    # VirusTotal's failure and the retry are warnings; a quota wait is at least INFO.
    levels = {
        "failure": {line["level"] for line in about_scan if line.get("vt_status") == 503},
        "retry": {line["level"] for line in about_scan if "retries in" in line["message"]},
        "quota": {line["level"] for line in about_scan if "for VirusTotal quota" in line["message"]},
    }
    assert levels == {"failure": {"WARNING"}, "retry": {"WARNING"}, "quota": {"INFO"}}
    # No secret in any line of either process.
    everything = server.logs_all() + worker.log_path.read_text()
    assert [s for s in visit["secrets"] if s in everything] == []

    admin = make_admin()
    trail = requests.get(f"{server.url}/api/admin/audit?per_page=200", headers=admin.headers, timeout=10).json()
    done = {(e["action"], e["outcome"]) for e in trail["events"] if e["actor_id"] == visit["user_id"]}
    expected = {"auth.register", "auth.login", "key.create", "file.upload", "scan.start", "results.export"}
    assert {(a, "success") for a in expected | {"auth.logout"}} <= done
    (uploaded,) = [e for e in trail["events"] if e["action"] == "file.upload"]
    assert uploaded["request_id"] == UPLOAD_ID

"""Structured logs: one JSON object a line, the request id from the upload to the worker's lines
about its scan, VirusTotal failures at a level an operator sees, and never a secret."""

from __future__ import annotations

import json
import logging
import re

from urllib3 import encode_multipart_formdata

from scanner.logs import JsonFormatter, TextFormatter, bind, unbind
from tests.scans.helpers import wait_for_scan


def test_a_line_is_one_json_object_with_the_bound_context_and_extra_fields():
    record = logging.LogRecord("scanner.x", logging.WARNING, __file__, 1, "scan %s failed", ("abc",), None)
    token = bind(request_id="req-1", scan_id="abc")
    try:
        from scanner.logs import ContextFilter

        ContextFilter().filter(record)
    finally:
        unbind(token)
    record.vt_status = 503
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "scan abc failed"
    assert (parsed["level"], parsed["logger"]) == ("WARNING", "scanner.x")
    assert (parsed["request_id"], parsed["scan_id"], parsed["vt_status"]) == ("req-1", "abc", 503)
    assert TextFormatter().format(record).endswith("request_id=req-1 scan_id=abc vt_status=503")


def test_the_worker_logs_virustotal_failures_with_the_scan_and_the_uploads_request_id(
    client, user, add_key, vt_emulator, start_worker
):
    worker = start_worker(LOG_FORMAT="json", LOG_LEVEL="INFO")
    key = add_key(user)
    vt_emulator.set_faults(transient_next=2)

    content = ("a.bin", b"logged on its way\n", "application/octet-stream")
    body, content_type = encode_multipart_formdata({"file": content})
    headers = {**user.headers, "X-Request-ID": "upload-trace-17"}
    uploaded = client.post("/api/files/upload", data=body, headers=headers, content_type=content_type).json
    scan_id = uploaded["scan"]["scan_id"]
    assert wait_for_scan(client, user, scan_id)["status"] == "completed"

    worker.stop()
    text = worker.log_path.read_text()
    # Every log line is JSON: none in Celery's own format (only its start-up banner is plain text).
    assert not re.search(r"^\[\d{4}-\d\d-\d\d [^]]*: (INFO|WARNING|ERROR)/", text, re.MULTILINE)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    from_client = [line for line in lines if line["logger"] == "scanner.virustotal.client"]
    failures = [line for line in from_client if line.get("vt_status") == 503]
    assert len(failures) == 2
    for line in failures:
        assert line["level"] == "WARNING"
        assert line["scan_id"] == scan_id
        assert line["request_id"] == "upload-trace-17"
        assert line["task"] == "scanner.scans.tasks.run_scan"
    # Each failure is retried, and the engine says so with when and how many attempts are left.
    retries = [line for line in lines if line["logger"] == "scanner.work" and "retries in" in line["message"]]
    assert len(retries) == 2
    assert all(line["level"] == "WARNING" and line["scan_id"] == scan_id for line in retries)
    # The worker's own lines about the scan's tasks carry the upload's request id too.
    assert any(line.get("request_id") == "upload-trace-17" and "succeeded" in line["message"] for line in lines)
    for secret in (key["key_value"], user.password, user.access_token, user.refresh_token):
        assert secret not in text


def test_a_scan_the_sweep_queued_again_keeps_the_uploads_request_id(app, client, user, add_key, start_worker):
    add_key(user)
    content = ("lost.bin", b"its message is lost\n", "application/octet-stream")
    body, content_type = encode_multipart_formdata({"file": content})
    headers = {**user.headers, "X-Request-ID": "lost-message-17"}
    uploaded = client.post("/api/files/upload", data=body, headers=headers, content_type=content_type).json
    scan_id = uploaded["scan"]["scan_id"]
    # The message is lost before any worker takes it (a broker restart): only beat's sweep finds the scan.
    app.extensions["celery"].control.purge()
    sweeping = {"SCAN_STUCK_GRACE_SECONDS": "0.5", "SCAN_SWEEP_SECONDS": "0.5"}
    worker = start_worker(beat=True, LOG_FORMAT="json", LOG_LEVEL="INFO", **sweeping)
    assert wait_for_scan(client, user, scan_id)["status"] == "completed"

    worker.stop()
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line.startswith("{")]
    about_scan = [line for line in lines if line.get("scan_id") == scan_id]
    assert any(line["message"].startswith(f"scan {scan_id} completed") for line in about_scan)
    assert {line.get("request_id") for line in about_scan} == {"lost-message-17"}

"""What every request gets around its route (scanner/system/middleware.py): its id, the access log
line, the security headers, and its count in both metrics views whether or not the line is logged."""

from __future__ import annotations

import json
import logging
import re

import requests

from scanner.logs import ContextFilter
from scanner.system.docs import DOCS_CSP
from scanner.system.middleware import API_CSP
from scanner.ui.routes import UI_CSP
from tests.system.test_prometheus import sample, scrape

MISSING_FILE = "/api/files/00000000-0000-0000-0000-000000000000"


def _access_lines(text: str) -> list[dict[str, str]]:
    """The access lines of the console (text) format: `... scanner.access GET ... key=value ...`."""
    return [dict(re.findall(r" (\w+)=(\S+)", line)) for line in text.splitlines() if " scanner.access " in line]


def test_a_generated_request_id_is_new_for_every_request(client):
    ids = [client.get("/api/health").headers["X-Request-ID"] for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


def test_a_valid_incoming_request_id_is_kept_and_any_other_replaced(client):
    kept = client.get("/api/health", headers={"X-Request-ID": "edge.trace_01-A"})
    assert kept.headers.getlist("X-Request-ID") == ["edge.trace_01-A"]
    for unusable in ("has spaces", "x" * 65, "semi;colon"):
        replaced = client.get("/api/health", headers={"X-Request-ID": unusable}).headers.getlist("X-Request-ID")
        assert len(replaced) == 1 and re.fullmatch(r"[0-9a-f]{32}", replaced[0])


def test_the_access_line_names_route_status_user_duration_address_and_request_id(client, user, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="scanner.access"):
        r = client.get(MISSING_FILE, headers={**user.headers, "X-Request-ID": "edge-line-1"})
    assert r.status_code == 404
    lines = [line for line in _access_lines(capsys.readouterr().err) if line.get("request_id") == "edge-line-1"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["method"], line["route"], line["status"]) == ("GET", "/api/files/<file_id>", "404")
    assert (line["user_id"], line["remote_addr"]) == (user.id, "127.0.0.1")
    assert float(line["duration_ms"]) >= 0
    assert user.access_token not in caplog.text


def test_below_info_there_is_no_access_line_yet_the_request_is_counted(client, make_admin, capsys):
    admin = make_admin()
    route = {"route": "/api/health", "method": "GET", "status": "200"}
    before = sample(scrape(client), "scanner_http_requests_total", **route)
    counted = client.get("/api/providers/metrics?hours=1", headers=admin.headers).json["requests_by_endpoint"]
    capsys.readouterr()
    assert not logging.getLogger("scanner.access").isEnabledFor(logging.INFO)  # tests run at WARNING

    for _ in range(3):
        client.get("/api/health")
    assert _access_lines(capsys.readouterr().err) == []
    assert sample(scrape(client), "scanner_http_requests_total", **route) == before + 3
    now = client.get("/api/providers/metrics?hours=1", headers=admin.headers).json["requests_by_endpoint"]
    assert now["/api/health"] == counted.get("/api/health", 0) + 3


def test_api_docs_and_pages_each_get_their_own_content_security_policy(client):
    assert client.get("/api/health").headers["Content-Security-Policy"] == API_CSP
    assert client.get("/api/docs").headers["Content-Security-Policy"] == DOCS_CSP
    # A page sets its own policy; the default does not replace it or come beside it.
    page = client.get("/signin")
    assert page.status_code == 200
    assert page.headers.getlist("Content-Security-Policy") == [UI_CSP]
    assert page.headers.getlist("X-Frame-Options") == ["DENY"]
    assert "Set-Cookie" not in page.headers  # no cookie session: bearer tokens only


def test_lines_during_a_request_carry_its_id_and_none_after_it(client, monkeypatch):
    import scanner.system.routes as routes

    log = logging.getLogger("tests.request_edge")
    seen: list[tuple[str, str | None]] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), getattr(record, "request_id", None)))

    def readiness():
        log.warning("checking")
        return {"status": "ready"}, 200

    monkeypatch.setattr(routes, "readiness", readiness)
    kept = Kept()
    kept.addFilter(ContextFilter())  # what the service's handler adds to every line
    log.addHandler(kept)
    try:
        client.get("/api/health/ready", headers={"X-Request-ID": "edge-ctx-5"})
        log.warning("after the answer")
    finally:
        log.removeHandler(kept)
    assert seen == [("checking", "edge-ctx-5"), ("after the answer", None)]


def test_behind_a_trusted_proxy_the_line_and_the_headers_follow_the_client(start_web):
    server = start_web(TRUSTED_PROXIES="1", LOG_FORMAT="json", LOG_LEVEL="INFO")
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Request-ID": "proxied-3"}
    r = requests.get(f"{server.url}/api/health", headers=forwarded, timeout=10)
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    lines = [json.loads(line) for line in server.logs_all().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "scanner.access" and line.get("request_id") == "proxied-3"]
    assert len(access) == 1 and access[0]["remote_addr"] == "203.0.113.9"

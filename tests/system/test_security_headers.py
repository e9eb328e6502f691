"""HSTS only where it means something: over HTTPS, directly or through a trusted proxy."""

from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix

HSTS = "Strict-Transport-Security"


def test_plain_http_gets_no_hsts(client):
    r = client.get("/api/health")
    assert HSTS not in r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_https_gets_hsts(client):
    r = client.get("/api/health", base_url="https://scanner.example")
    assert r.headers[HSTS] == "max-age=31536000; includeSubDomains"


def test_a_forwarded_proto_counts_only_from_a_trusted_proxy(app, client, monkeypatch):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    assert HSTS not in client.get("/api/health", headers=forwarded).headers  # anyone could send that
    # What create_app puts in front of the app with TRUSTED_PROXIES=1.
    monkeypatch.setattr(app, "wsgi_app", ProxyFix(app.wsgi_app, x_for=1, x_proto=1))
    assert HSTS in client.get("/api/health", headers=forwarded).headers

"""Seed 002's /api/auth/me and /api/providers/health|metrics|performance, against the app."""

from __future__ import annotations

import pytest

from tests.assertions import assert_error


def test_me_is_the_tokens_user_in_seed_002s_shape(client, user):
    r = client.get("/api/auth/me", headers=user.headers)
    assert r.status_code == 200
    assert {"id", "email", "role"} <= set(r.json)
    assert (r.json["id"], r.json["email"], r.json["role"]) == (user.id, user.email, "user")
    assert "password_hash" not in r.json
    assert_error(client.get("/api/auth/me"), 401)


def test_health_is_open_and_says_one_status_per_part(client, user, add_key):
    r = client.get("/api/providers/health")
    assert r.status_code == 200
    body = r.json
    assert set(body) == {"status", "timestamp", "components"}
    assert set(body["components"]) == {"database", "redis", "providers"}
    database = body["components"]["database"]
    assert database == {"status": "healthy", "message": "Database connection successful"}
    assert set(body["components"]["redis"]) == {"status", "message"}
    # No key anywhere yet: VirusTotal cannot be used, and the whole says so.
    assert body["components"]["providers"]["virustotal"]["status"] == "unconfigured"
    assert body["status"] == "degraded"

    add_key(user)
    after = client.get("/api/providers/health").json
    assert after["components"]["providers"]["virustotal"] == {"status": "healthy", "message": "Provider available"}


def test_health_says_when_no_key_could_be_verified_by_virustotal(client, app, user, monkeypatch):
    from tests.api_keys.helpers import closed_port_url

    monkeypatch.setitem(app.config, "VT_API_URL", closed_port_url())
    body = {"name": "added offline", "key_value": "a" * 64}
    stored = client.post("/api/keys/", json=body, headers=user.headers)
    assert stored.status_code == 201, stored.json
    virustotal = client.get("/api/providers/health").json["components"]["providers"]["virustotal"]
    assert virustotal == {"status": "degraded", "message": "No active API key has been verified by VirusTotal yet"}


def test_health_never_shows_a_drivers_text(client, app, monkeypatch):
    # A Redis that cannot be reached, named with a user and password the body must never echo.
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://operator:hunter2-secret@127.0.0.1:1/0")
    r = client.get("/api/providers/health")
    redis_part = r.json["components"]["redis"]
    assert redis_part == {"status": "unhealthy", "message": "Redis unreachable"}
    assert "hunter2" not in r.get_data(as_text=True) and "127.0.0.1" not in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/providers/metrics", "/api/providers/performance"])
def test_metrics_and_performance_are_for_admins_only(client, user, path):
    assert_error(client.get(path), 401)
    assert_error(client.get(path, headers=user.headers), 403, "AUTHORIZATION_ERROR")


def test_metrics_count_by_status_and_route_template(client, make_admin, user):
    admin = make_admin()
    ids = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(3)]
    for file_id in ids:
        assert client.get(f"/api/files/{file_id}", headers=user.headers).status_code == 404
    assert client.get("/api/auth/me", headers=user.headers).status_code == 200

    r = client.get("/api/providers/metrics?hours=1", headers=admin.headers)
    assert r.status_code == 200
    body = r.json
    assert set(body) == {
        "period_hours",
        "timestamp",
        "total_requests",
        "requests_by_status",
        "requests_by_endpoint",
        "error_rate",
    }
    assert body["period_hours"] == 1
    by_route = body["requests_by_endpoint"]
    assert by_route["/api/files/<file_id>"] == 3  # one template, not three paths
    assert not any(file_id in route for route in by_route for file_id in ids)
    assert by_route["/api/auth/me"] == 1
    assert body["requests_by_status"]["404"] == 3
    assert body["total_requests"] == sum(body["requests_by_status"].values()) == sum(by_route.values())
    errors = sum(n for status, n in body["requests_by_status"].items() if int(status) >= 400)
    assert body["error_rate"] == round(100 * errors / body["total_requests"], 2)


def test_metrics_hours_is_validated(client, make_admin):
    admin = make_admin()
    assert client.get("/api/providers/metrics", headers=admin.headers).json["period_hours"] == 24
    assert_error(client.get("/api/providers/metrics?hours=0", headers=admin.headers), 400, "VALIDATION_ERROR")
    assert_error(client.get("/api/providers/metrics?hours=abc", headers=admin.headers), 400, "VALIDATION_ERROR")


def test_performance_judges_against_configured_thresholds(client, app, make_admin, monkeypatch):
    admin = make_admin()
    body = client.get("/api/providers/performance", headers=admin.headers).json
    system, process = body["system_metrics"]["system"], body["system_metrics"]["process"]
    assert 0 < system["memory"]["percent"] <= 100
    assert process["memory"]["rss"] > 0
    assert body["performance_health"]["status"] in ("healthy", "degraded")

    # Thresholds any real process crosses: the view must say so, with a reason and a remedy.
    monkeypatch.setitem(app.config, "PERF_PROCESS_RSS_BYTES", 1)
    monkeypatch.setitem(app.config, "PERF_SYSTEM_MEMORY_PERCENT", 0.0)
    body = client.get("/api/providers/performance", headers=admin.headers).json
    health = body["performance_health"]
    assert health["status"] == "degraded"
    assert body["system_metrics"]["process"]["memory"]["threshold_exceeded"] is True
    assert body["system_metrics"]["system"]["memory"]["threshold_exceeded"] is True
    assert len(health["issues"]) >= 2 and len(health["recommendations"]) == len(health["issues"])

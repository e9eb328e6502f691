def test_liveness_needs_no_auth(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_is_503_without_a_worker(client):
    response = client.get("/api/health/ready")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unavailable"
    assert body["components"]["database"]["status"] == "healthy"
    assert body["components"]["broker"]["status"] == "healthy"
    assert body["components"]["worker"]["status"] == "unhealthy"
    assert body["components"]["worker"]["message"].startswith("no worker heartbeat in the last")


def test_ready_is_200_with_a_live_worker(client, worker):
    response = client.get("/api/health/ready")
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ok"
    assert response.json["components"]["worker"]["status"] == "healthy"


def test_ready_reports_a_broken_broker(client, monkeypatch):
    # Celery reads its broker from this variable first.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    response = client.get("/api/health/ready")
    assert response.status_code == 503
    broker = response.json["components"]["broker"]
    assert broker["status"] == "unhealthy", response.json
    # Anyone may call this: the failure's kind is told, not the address it failed to reach.
    assert broker["message"].startswith("unreachable (") and "127.0.0.1" not in broker["message"]

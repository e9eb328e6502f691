"""GET /metrics: Prometheus' text format, for the scraper only."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.assertions import assert_error


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scrape(client, **kwargs) -> str:
    r = client.get("/metrics", **kwargs)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.content_type.startswith("text/plain")
    return r.get_data(as_text=True)


def test_requests_are_counted_by_route_template_method_and_status(client, user):
    route = {"route": "/api/files/<file_id>", "method": "GET", "status": "404"}
    before = sample(scrape(client), "scanner_http_requests_total", **route)
    for n in range(3):
        client.get(f"/api/files/00000000-0000-0000-0000-00000000000{n}", headers=user.headers)
    text = scrape(client)
    assert sample(text, "scanner_http_requests_total", **route) == before + 3
    assert sample(text, "scanner_http_request_duration_seconds_count", route=route["route"]) >= 3
    assert "00000000-0000-0000-0000-000000000001" not in text


def test_latency_buckets_sum_and_count_add_up_to_the_requests(client):
    route = {"route": "/api/health", "method": "GET"}
    name = "scanner_http_request_duration_seconds"

    def latency() -> dict[str, float]:
        text = scrape(client)
        buckets = {le: sample(text, f"{name}_bucket", le=le, **route) for le in ("0.005", "30.0", "+Inf")}
        return {**buckets, "count": sample(text, f"{name}_count", **route), "sum": sample(text, f"{name}_sum", **route)}

    before = latency()
    for _ in range(4):
        client.get("/api/health")
    after = latency()
    assert after["count"] - before["count"] == after["+Inf"] - before["+Inf"] == 4
    assert after["30.0"] - before["30.0"] == 4  # none of them took 30 s
    assert before["0.005"] <= after["0.005"] <= after["30.0"]  # cumulative, as Prometheus reads them
    assert 0 < after["sum"] - before["sum"] < 4 * 30


def test_row_states_are_read_at_scrape_time(client, user):
    client.post("/api/auth/register", json={})  # any request: the point is the scrape below
    text = scrape(client)
    assert sample(text, "scanner_open_streams") == 0
    assert "scanner_scans" in text


def test_only_the_scraper_may_read_it(client, app, monkeypatch):
    elsewhere = {"REMOTE_ADDR": "198.51.100.4"}
    assert_error(client.get("/metrics", environ_base=elsewhere), 403, "AUTHORIZATION_ERROR")
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "scrape-token-0123456789")
    assert_error(client.get("/metrics", environ_base=elsewhere, headers={"Authorization": "Bearer wrong"}), 403)
    scrape(client, environ_base=elsewhere, headers={"Authorization": "Bearer scrape-token-0123456789"})


def test_virustotal_requests_by_endpoint_and_outcome(client, user, add_key, vt_emulator):
    add_key(user)
    text = scrape(client)
    ok_before = sample(text, "scanner_virustotal_requests_total", endpoint="GET /domains", outcome="ok")
    failed_before = sample(text, "scanner_virustotal_requests_total", endpoint="GET /domains", outcome="TransientError")
    vt_emulator.set_faults(transient_next=1)
    client.post("/api/check_ioc", json={"ioc": "metrics-one.org"}, headers=user.headers)
    client.post("/api/check_ioc", json={"ioc": "metrics-two.org"}, headers=user.headers)
    text = scrape(client)
    failed = sample(text, "scanner_virustotal_requests_total", endpoint="GET /domains", outcome="TransientError")
    assert failed == failed_before + 1
    assert sample(text, "scanner_virustotal_requests_total", endpoint="GET /domains", outcome="ok") > ok_before


def test_cache_reads_are_counted_as_hits_and_misses(client, user, add_key):
    add_key(user)
    before = {
        o: sample(scrape(client), "scanner_cache_requests_total", cache="lookups", outcome=o) for o in ("hit", "miss")
    }
    for _ in range(2):
        r = client.post("/api/check_ioc", json={"ioc": "cache-counted.org"}, headers=user.headers)
        assert r.status_code == 200
    text = scrape(client)
    assert sample(text, "scanner_cache_requests_total", cache="lookups", outcome="miss") > before["miss"]
    assert sample(text, "scanner_cache_requests_total", cache="lookups", outcome="hit") > before["hit"]


def test_each_active_key_reports_its_quota_left_by_id_never_its_value(client, user, add_key):
    key = add_key(user, per_minute=4, per_day=500)
    left = {
        w: sample(scrape(client), "scanner_vt_quota_remaining", key_id=key["id"], window=w) for w in ("minute", "day")
    }
    assert 0 < left["minute"] <= 4 and 0 < left["day"] <= 500
    client.post("/api/check_ioc", json={"ioc": "quota-counted.org"}, headers=user.headers)
    text = scrape(client)
    assert sample(text, "scanner_vt_quota_remaining", key_id=key["id"], window="minute") == left["minute"] - 1
    assert sample(text, "scanner_vt_quota_remaining", key_id=key["id"], window="day") == left["day"] - 1
    assert key["key_value"] not in text


def test_shared_counters_are_kept_through_a_redis_outage(app, client, private_redis, monkeypatch):
    import redis

    from scanner.extensions import db
    from scanner.metrics import count_cache, store
    from scanner.metrics.models import CounterTotal

    monkeypatch.setitem(app.config, "REDIS_URL", private_redis.url())
    monkeypatch.setattr(store._backoff, "seconds", 0.0)  # try Redis again at once once it is back
    hits = {"cache": "lookups", "outcome": "hit"}
    before = sample(scrape(client), "scanner_cache_requests_total", **hits)
    with app.app_context():  # counted here, stored when the context ends (as a request's or a task's)
        count_cache("lookups", hits=2, misses=0)
    in_redis = redis.Redis.from_url(private_redis.url())
    assert in_redis.hgetall(f"{app.config['CACHE_KEY_PREFIX']}metrics:counters") == {
        b'["scanner_cache_requests_total", "lookups", "hit"]': b"2"
    }
    in_redis.close()

    private_redis.kill()
    with app.app_context():
        count_cache("lookups", hits=3, misses=0)
    with app.app_context():
        stored = db.session.get(CounterTotal, ("scanner_cache_requests_total", '["lookups", "hit"]'))
        assert stored is not None and stored.value == 3

    private_redis.start()
    assert sample(scrape(client), "scanner_cache_requests_total", **hits) == before + 5


def test_queue_depth_and_open_streams_move(user, add_key, start_web):
    import time

    import requests

    from tests.lookups.helpers import first_event, stream, submit_bulk

    add_key(user)
    server = start_web(STREAM_HEARTBEAT_SECONDS="0.2")

    def scraped(name: str) -> float:
        return sample(requests.get(f"{server.url}/metrics", timeout=10).text, name)

    waiting = scraped("scanner_queue_depth")
    # No worker runs: the job's task waits in the queue and its stream stays open.
    job = submit_bulk(server, user, "queued.example.com")
    assert scraped("scanner_queue_depth") == waiting + 1
    opened = stream(server, f"/api/stream/bulk/{job['job_id']}", user)
    assert first_event(opened).event == "progress"
    assert scraped("scanner_open_streams") == 1
    opened.close()
    deadline = time.monotonic() + 30
    while scraped("scanner_open_streams") != 0:
        assert time.monotonic() < deadline, "the closed stream kept its place"
        time.sleep(0.2)

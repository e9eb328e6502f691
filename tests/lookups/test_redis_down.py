"""Seed 000: when Redis is down, lookups still answer from the database.

The web server runs against a Redis of this test's own (cache, rate limits, quota counters, token
blocklist, events, and the Celery broker as a one-Redis deployment has it), which the test kills.
The machine's shared Redis is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
import requests

from .helpers import free_port

REDIS_SERVER = shutil.which("redis-server")


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server on a free loopback port, owned by this test: `(url, process)`."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--daemonize", "no", "--dir", str(tmp_path)]
    log = open(tmp_path / "redis.log", "w")  # noqa: SIM115  closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert proc.poll() is None, (tmp_path / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield url, proc, client
    client.close()
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    log.close()


def post(server, path: str, token: str | None = None, **body) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{server.url}{path}", json=body, headers=headers, timeout=30)


def test_lookups_answer_from_the_database_when_redis_is_down(user, add_key, vt_emulator, start_web, private_redis):
    url, redis_proc, redis_client = private_redis
    key = add_key(user)
    server = start_web(
        REDIS_URL=url, CACHE_REDIS_URL=url, RATELIMIT_STORAGE_URI=url, CELERY_BROKER_URL=url, STREAM_POLL_SECONDS="0.1"
    )
    login = post(server, "/api/auth/login", username=user.username, password=user.password)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]

    first = post(server, "/api/check_ioc", token, ioc="redis-down.example.com")
    again = post(server, "/api/check_ioc", token, ioc="redis-down.example.com")
    assert first.status_code == 200 and first.json()["source"] == "virustotal", first.text
    assert again.status_code == 200 and again.json()["source"] == "cache"
    assert redis_client.dbsize() > 0  # the cache and the rate limits live in this Redis
    asked = vt_emulator.total(key["key_value"])

    redis_proc.kill()
    redis_proc.wait(10)
    with pytest.raises(redis.ConnectionError):
        redis_client.ping()

    # Signing in, looking up, reading back and seed 000's endpoint all still work.
    login = post(server, "/api/auth/login", username=user.username, password=user.password)
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    answer = post(server, "/api/check_ioc", token, ioc="redis-down.example.com")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "database" and body["status"] == "completed"
    assert body["summary"] == first.json()["summary"]
    assert vt_emulator.total(key["key_value"]) == asked  # answered without asking VirusTotal

    bearer = {"Authorization": f"Bearer {token}"}
    read = requests.get(f"{server.url}/api/lookup/{body['lookup_id']}", headers=bearer, timeout=30)
    assert read.status_code == 200 and read.json()["source"] == "database"
    seed = post(server, "/get_virustotal_report/", token, endpoint_type="domain", endpoint_value=body["ioc"])
    assert seed.status_code == 200, seed.text
    assert seed.json()["cached"] is True and seed.json()["report"]["id"] == "redis-down.example.com"

    # A finished lookup's stream answers from the database too, with nothing to subscribe to.
    streamed = requests.get(
        f"{server.url}/api/stream_ioc",
        params={"ioc": "redis-down.example.com"},
        headers=bearer,
        timeout=30,
    )
    assert streamed.status_code == 200 and "event: complete" in streamed.text

    # Nothing stored to answer from and no quota store to ask VirusTotal safely: pending, not an error.
    fresh = post(server, "/api/check_ioc", token, ioc="never-seen.example.com")
    assert fresh.status_code == 202, fresh.text
    assert fresh.json()["status"] == "pending"
    assert "quota store is unreachable" in fresh.json()["providers"][0]["error"]

    # Liveness holds; readiness says what is down.
    assert requests.get(f"{server.url}/api/health", timeout=30).status_code == 200
    ready = requests.get(f"{server.url}/api/health/ready", timeout=30)
    assert ready.status_code == 503
    components = ready.json()["components"]
    assert components["redis"]["status"] == "unhealthy"
    assert components["cache"]["status"] == "unhealthy"
    assert components["broker"]["status"] == "unhealthy"

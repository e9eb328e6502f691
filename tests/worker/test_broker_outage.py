"""The worker outlives its broker: Redis (broker, quota store, cache) killed and started again,
the same worker process goes on and every scan in flight still completes."""

from __future__ import annotations

import os
import time

import pytest

from tests.files.helpers import uploaded
from tests.scans.helpers import wait_for_scan

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 15


@pytest.fixture
def redis_mode(test_env):
    if not test_env.get("REDIS_URL"):
        pytest.skip("the broker outage is a Redis outage: needs TEST_REDIS_URL")


def test_worker_survives_a_redis_outage_and_finishes_every_scan(
    redis_mode, client, user, add_key, vt_emulator, start_worker, private_redis
):
    vt_emulator.configure(queued_seconds=1.0, progress_seconds=1.0)
    add_key(user)
    worker = start_worker(
        concurrency=4,
        beat=True,
        CELERY_BROKER_URL=private_redis.url(1),
        REDIS_URL=private_redis.url(0),
        SCAN_LEASE_SECONDS="2",
        SCAN_STUCK_GRACE_SECONDS="1",
        SCAN_SWEEP_SECONDS="0.5",
    )
    main_pid = worker.proc.pid
    # Redis goes while tasks run (a slow VirusTotal), their messages unacknowledged, and while the
    # worker, with room for more, waits on the broker for the next message: the moment that
    # crashed celery 5.7.0's worker.
    vt_emulator.set_faults(latency_ms=3000)
    scan_ids = [uploaded(client, user, os.urandom(2048), f"f{i}.bin")["scan"]["scan_id"] for i in range(2)]
    time.sleep(2)

    private_redis.kill()
    time.sleep(OUTAGE_SECONDS)
    assert worker.proc.poll() is None, worker.logs()
    private_redis.start()
    vt_emulator.set_faults()

    statuses = [wait_for_scan(client, user, scan_id, limit=120)["status"] for scan_id in scan_ids]
    assert statuses == ["completed"] * len(scan_ids)
    assert worker.proc.poll() is None and worker.proc.pid == main_pid, worker.logs()
    assert "Unrecoverable error" not in worker.logs()

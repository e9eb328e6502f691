"""Per-key budgets: both stores obey the same rules (SQL always, Redis under TEST_REDIS_URL)."""

from __future__ import annotations

import math
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from scanner.errors import QuotaExhausted
from scanner.virustotal import quota
from scanner.virustotal.models import QuotaBudget
from scanner.virustotal.quota import Budget, RedisQuotaStore, SqlQuotaStore
from tests.fixtures.app import database_is_postgres

WINDOW, MARGIN = 1.0, 0.1


@pytest.fixture(params=["sql", "redis"])
def make_store(request, db):
    def make(window: float = WINDOW, margin: float = MARGIN):
        if request.param == "sql":
            return SqlQuotaStore(db.engine, window, margin)
        client = request.getfixturevalue("redis_client")
        return RedisQuotaStore(client, window, margin)

    return make


def budget(per_minute: int = 3, per_day: int = 1000) -> Budget:
    return Budget(secrets.token_hex(32), per_minute, per_day)


def next_midnight() -> datetime:
    now = time.time()
    return datetime.fromtimestamp((math.floor(now / 86400) + 1) * 86400, UTC)


def test_grants_per_minute_tokens_then_says_when_the_next_frees(make_store):
    store, b = make_store(), budget(per_minute=3)

    assert [store.try_acquire(b) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = store.try_acquire(b)

    assert 0 < wait <= WINDOW + MARGIN
    time.sleep(wait)
    assert store.try_acquire(b) == 0.0


def test_a_refused_request_takes_nothing(make_store):
    store, b = make_store(), budget(per_minute=2)
    store.try_acquire(b)
    store.try_acquire(b)

    for _ in range(5):
        assert store.try_acquire(b) > 0

    used = store.usage(b)
    assert (used["minute_used"], used["day_used"]) == (2, 2)


def test_wait_time_looks_without_taking(make_store):
    store, b = make_store(), budget(per_minute=1)

    assert store.wait_time(b) == 0.0
    assert store.wait_time(b) == 0.0
    assert store.usage(b)["minute_used"] == 0
    assert store.try_acquire(b) == 0.0
    assert store.wait_time(b) > 0


def test_each_grant_is_held_the_window_plus_the_margin(make_store):
    store, b = make_store(window=0.5, margin=0.5), budget(per_minute=1)
    store.try_acquire(b)

    # Past VirusTotal's window but inside the margin: still refused.
    time.sleep(0.6)

    assert 0 < store.try_acquire(b) <= 0.4


def test_usage_counts_this_window_and_this_utc_day(make_store):
    store, b = make_store(), budget(per_minute=3, per_day=10)

    fresh = store.usage(b)
    assert fresh == {
        "minute_used": 0,
        "minute_remaining": 3,
        "minute_resets_at": None,
        "day_used": 0,
        "day_remaining": 10,
        "day_resets_at": next_midnight(),
        "exhausted_until": None,
    }

    before = datetime.now(UTC)
    store.try_acquire(b)
    store.try_acquire(b)
    used = store.usage(b)

    assert (used["minute_used"], used["minute_remaining"]) == (2, 1)
    assert (used["day_used"], used["day_remaining"]) == (2, 8)
    assert before < used["minute_resets_at"] <= datetime.now(UTC) + timedelta(seconds=WINDOW + MARGIN)

    time.sleep(WINDOW + MARGIN)
    later = store.usage(b)
    assert (later["minute_used"], later["minute_remaining"], later["minute_resets_at"]) == (0, 3, None)
    assert later["day_used"] == 2


def test_the_day_budget_stops_grants_until_midnight_utc(make_store):
    store, b = make_store(), budget(per_minute=100, per_day=3)
    for _ in range(3):
        assert store.try_acquire(b) == 0.0

    wait = store.try_acquire(b)

    assert abs(wait - (next_midnight().timestamp() - time.time())) < 5
    used = store.usage(b)
    assert (used["day_used"], used["day_remaining"], used["day_resets_at"]) == (3, 0, next_midnight())
    assert used["minute_remaining"] == 97  # the minute still has room; the day does not


def test_marking_a_minute_exhausted_blocks_until_the_window_passes(make_store):
    store, b = make_store(), budget(per_minute=10)

    until = store.block(b, "minute")

    wait = store.try_acquire(b)
    assert 0 < wait <= WINDOW + MARGIN
    assert store.usage(b)["exhausted_until"] == until
    assert store.usage(b)["minute_used"] == 0
    time.sleep(wait)
    assert store.try_acquire(b) == 0.0
    assert store.usage(b)["exhausted_until"] is None


def test_marking_a_day_exhausted_blocks_until_midnight_utc(make_store):
    store, b = make_store(), budget(per_minute=10)

    until = store.block(b, "day")

    assert until == next_midnight()
    assert abs(store.try_acquire(b) - (until.timestamp() - time.time())) < 5
    # A later minute pause never shortens the day's.
    assert store.block(b, "minute") == until


def test_stored_copies_of_one_key_share_its_budget(make_store):
    store = make_store()
    first = budget(per_minute=2)
    same_key_other_row = Budget(first.id, per_minute=2, per_day=1000)
    other_key = budget(per_minute=2)

    store.try_acquire(first)
    store.try_acquire(first)

    assert store.try_acquire(same_key_other_row) > 0
    assert store.try_acquire(other_key) == 0.0


def test_a_lowered_limit_waits_for_enough_grants_to_expire(make_store):
    store, b = make_store(), budget(per_minute=3)
    for _ in range(3):
        store.try_acquire(b)

    lowered = Budget(b.id, per_minute=1, per_day=1000)
    wait = store.try_acquire(lowered)

    # Two of the three grants must leave the window, not just the oldest.
    assert wait > 0
    time.sleep(wait)
    assert store.try_acquire(lowered) == 0.0
    assert store.try_acquire(lowered) > 0


def test_concurrent_takers_get_exactly_the_budget(make_store):
    store, b = make_store(window=30, margin=1), budget(per_minute=5)
    results: list[float] = []
    start = threading.Barrier(20)

    def take():
        start.wait()
        results.append(store.try_acquire(b))

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(0.0) == 5
    assert store.usage(b)["minute_used"] == 5


def test_acquire_raises_quota_exhausted_with_the_wait(app_ctx, monkeypatch, app):
    monkeypatch.setitem(app.config, "VT_QUOTA_MINUTE_SECONDS", 30.0)
    b = budget(per_minute=1)
    quota.acquire(b)

    with pytest.raises(QuotaExhausted) as raised:
        quota.acquire(b)

    assert 0 < raised.value.retry_after <= 31
    assert quota.usage(b)["minute_used"] == 1


def test_a_grant_survives_the_callers_rollback(db):
    b = budget(per_minute=5)
    db.session.execute(text("SELECT 1"))

    assert quota.try_acquire(b) == 0.0
    db.session.rollback()

    assert quota.usage(b)["minute_used"] == 1


@pytest.mark.skipif(database_is_postgres(), reason="SQLite's single write lock")
def test_pending_sqlite_writes_are_refused_instead_of_deadlocking(db, app):
    if app.config.get("REDIS_URL"):
        pytest.skip("the Redis store takes no database lock")
    b = budget()
    db.session.execute(insert(QuotaBudget).values(budget_id="a caller's pending write"))

    with pytest.raises(RuntimeError, match="commit before calling VirusTotal"):
        quota.try_acquire(b)
    db.session.rollback()
    assert quota.try_acquire(b) == 0.0

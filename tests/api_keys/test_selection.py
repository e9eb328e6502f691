"""Key selection over real keys, the real quota store and the emulator: budgets hold across
processes, and work moves to another key when VirusTotal refuses one."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sql

from scanner.api_keys import selection
from scanner.api_keys.models import ApiKey
from scanner.auth.models import User
from scanner.errors import NoActiveApiKey, NotFound, QuotaExhausted, ValidationFailed
from scanner.virustotal import quota
from scanner.virustotal.errors import InvalidKeyError, TransientError, VTConnectionError
from tests.api_keys.helpers import closed_port_url
from tests.fixtures.processes import ROOT

IP = "GET /ip_addresses/{id}"


def lookup(client):
    return client.get_ip("8.8.4.4")


def as_user(db, user) -> User:
    return db.session.get(User, uuid.UUID(user.id))


def stored(db, key: dict) -> ApiKey:
    """The row as committed, whatever the session remembers."""
    return db.session.get(ApiKey, uuid.UUID(key["id"]), populate_existing=True)


def next_midnight() -> datetime:
    return datetime.fromtimestamp((math.floor(time.time() / 86400) + 1) * 86400, UTC)


def test_twenty_callers_in_two_processes_keep_a_key_within_its_minute(app, user, add_key, vt_emulator):
    minute = 3.0
    vt_emulator.configure(minute_seconds=minute)
    key = add_key(user, per_minute=4, per_day=500)
    # The margin covers the time between taking a token and VirusTotal seeing the request; that
    # is network and scheduling jitter, which does not shrink with the scaled-down minute.
    env = {**os.environ, "VT_QUOTA_MINUTE_SECONDS": str(minute), "VT_QUOTA_MARGIN_SECONDS": "0.15"}
    command = [sys.executable, "-m", "tests.api_keys.quota_callers", user.id, "10"]

    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(process.communicate(timeout=300)[0].splitlines()[-1]) for process in processes]

    assert [r["failed"] for r in results] == [[], []]
    assert sum(r["ok"] for r in results) == 20
    # 21 requests: the check when the key was added, then the twenty lookups. Never a 429.
    assert vt_emulator.statuses(key["key_value"]) == {200: 21}
    seen = sorted(entry.time for entry in vt_emulator.log if entry.key == key["key_value"])
    # Any five consecutive requests span at least a minute: no window ever held five.
    assert min(later - earlier for earlier, later in zip(seen, seen[4:], strict=False)) >= minute


def test_a_call_uses_the_users_key_and_records_its_use(db, client, user, add_key, vt_emulator):
    key = add_key(user)

    answer = selection.call(as_user(db, user), lookup)
    db.session.commit()  # the caller's: the use is written with it

    assert answer["id"] == "8.8.4.4"
    assert vt_emulator.counts(key["key_value"]) == {IP: 2}  # the check when it was added, then this
    shown = client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]
    assert shown["last_used_at"] is not None
    assert shown["updated_at"] == key["updated_at"]  # using a key is not editing it
    assert shown["usage"]["minute_used"] == 2


def test_a_use_is_written_with_the_callers_commit_or_apart_when_it_rolls_back(db, client, user, add_key):
    committed, rolled_back = add_key(user, name="committed"), add_key(user, name="rolled back")
    me = as_user(db, user)
    writes: list[sql.Connection] = []  # the connection of each UPDATE of a key

    def written(conn, cursor, statement, *args) -> None:
        if statement.startswith("UPDATE api_keys"):
            writes.append(conn)

    sql.event.listen(db.engine, "before_cursor_execute", written)
    try:
        selection.call(me, lookup, key_id=uuid.UUID(committed["id"]))
        assert writes == []  # not before the caller's commit
        callers = db.session.connection()
        db.session.commit()
        assert writes == [callers]  # in the caller's transaction, not one of its own
    finally:
        sql.event.remove(db.engine, "before_cursor_execute", written)

    selection.call(me, lookup, key_id=uuid.UUID(rolled_back["id"]))
    db.session.rollback()  # the caller's work is undone; the key was used all the same

    for key in (committed, rolled_back):
        shown = client.get(f"/api/keys/{key['id']}", headers=user.headers).json["api_key"]
        assert shown["last_used_at"] > (key["last_used_at"] or key["created_at"])


def test_pick_key_prefers_a_key_with_budget_now(db, user, add_key):
    spent = add_key(user, per_minute=1, name="spent by its check")
    fresh = add_key(user, per_minute=1000, name="fresh")

    assert str(selection.pick_key(as_user(db, user)).id) == fresh["id"]
    assert quota.wait_time(stored(db, spent)) > 0


def test_calls_spread_over_the_keys_with_budget(db, user, add_key, vt_emulator):
    first, second = add_key(user), add_key(user)
    me = as_user(db, user)

    for _ in range(4):
        selection.call(me, lookup)

    # Each key: its check, then every other call.
    assert vt_emulator.counts(first["key_value"]) == vt_emulator.counts(second["key_value"]) == {IP: 3}


def test_pick_key_by_id(db, make_user, add_key):
    owner, other = make_user(), make_user()
    key = add_key(owner)
    theirs = add_key(other)
    me = as_user(db, owner)

    assert str(selection.pick_key(me, uuid.UUID(key["id"])).id) == key["id"]
    with pytest.raises(NotFound):
        selection.pick_key(me, uuid.UUID(theirs["id"]))
    with pytest.raises(NotFound):
        selection.pick_key(me, uuid.uuid4())
    stored(db, key).is_active = False
    db.session.commit()
    with pytest.raises(ValidationFailed, match="API key is not active"):
        selection.pick_key(me, uuid.UUID(key["id"]))
    with pytest.raises(NoActiveApiKey):
        selection.pick_key(me)


def test_a_user_without_keys_gets_no_active_api_key(db, user):
    with pytest.raises(NoActiveApiKey):
        selection.call(as_user(db, user), lookup)


def test_a_429_pauses_the_key_and_moves_the_work_to_the_next(db, client, user, add_key, vt_emulator):
    refused, spare = add_key(user, name="refused"), add_key(user, name="spare")
    me = as_user(db, user)
    selection.call(me, lookup, key_id=uuid.UUID(spare["id"]))  # the spare is now the more recently used
    vt_emulator.add_key(refused["key_value"], per_minute=0)  # VirusTotal answers 429 to it from now on

    assert selection.call(me, lookup)["id"] == "8.8.4.4"

    assert vt_emulator.statuses(refused["key_value"]) == {200: 1, 429: 1}
    assert vt_emulator.counts(spare["key_value"]) == {IP: 3}
    shown = client.get(f"/api/keys/{refused['id']}", headers=user.headers).json["api_key"]
    assert shown["exhausted_until"] is not None
    assert shown["last_error"].startswith("VirusTotal quota exceeded; paused until")
    assert shown["is_active"] is True

    # Paused: the next calls go straight to the spare.
    selection.call(me, lookup)
    assert vt_emulator.statuses(refused["key_value"]) == {200: 1, 429: 1}
    assert vt_emulator.counts(spare["key_value"]) == {IP: 4}


def test_a_401_deactivates_the_key_and_moves_the_work_to_the_next(db, client, user, add_key, vt_emulator):
    rejected, spare = add_key(user, name="rejected"), add_key(user, name="spare")
    me = as_user(db, user)
    selection.call(me, lookup, key_id=uuid.UUID(spare["id"]))
    vt_emulator.set_faults(error_next={"status": 401, "code": "WrongCredentialsError"})

    assert selection.call(me, lookup)["id"] == "8.8.4.4"

    assert vt_emulator.statuses(rejected["key_value"]) == {200: 1, 401: 1}
    # Written in its own transaction: the caller's rollback does not bring the key back.
    db.session.rollback()
    row = stored(db, rejected)
    assert row.is_active is False
    assert row.last_error == "VirusTotal rejected the key (WrongCredentialsError); deactivated"
    shown = client.get(f"/api/keys/{rejected['id']}", headers=user.headers).json["api_key"]
    assert shown["is_active"] is False
    assert shown["updated_at"] > rejected["updated_at"]
    selection.call(me, lookup)
    assert vt_emulator.total(rejected["key_value"]) == 2


def test_when_every_key_is_spent_the_caller_learns_the_soonest_free_token(db, user, add_key, vt_emulator):
    first = add_key(user, per_minute=1)
    second = add_key(user, per_minute=1)
    me = as_user(db, user)
    sent = vt_emulator.total()

    with pytest.raises(QuotaExhausted) as raised:
        selection.call(me, lookup)

    waits = [quota.wait_time(stored(db, key)) for key in (first, second)]
    assert 0 < raised.value.retry_after <= max(waits)
    assert raised.value.retry_after == pytest.approx(min(waits), abs=0.5)
    assert vt_emulator.total() == sent  # nothing was spent on finding out


def test_a_named_key_is_never_swapped_for_another(db, user, add_key, vt_emulator):
    named, other = add_key(user), add_key(user)
    vt_emulator.add_key(named["key_value"], per_minute=0)

    with pytest.raises(QuotaExhausted) as raised:
        selection.call(as_user(db, user), lookup, key_id=uuid.UUID(named["id"]))

    assert raised.value.retry_after > 0
    assert vt_emulator.total(other["key_value"]) == 1  # only its own check


def test_call_with_key_raises_the_rejection_and_deactivates_the_key(db, user, add_key, vt_emulator):
    key = add_key(user)
    vt_emulator.set_faults(error_next={"status": 401, "code": "UserNotActiveError"})

    with pytest.raises(InvalidKeyError):
        selection.call_with_key(stored(db, key), lookup)

    assert stored(db, key).is_active is False


def test_a_transient_error_reaches_the_caller_and_leaves_the_key_alone(db, user, add_key, vt_emulator):
    key = add_key(user)
    vt_emulator.set_faults(transient_next=1)

    with pytest.raises(TransientError):
        selection.call(as_user(db, user), lookup)

    row = stored(db, key)
    assert (row.is_active, row.exhausted_until, row.last_used_at) == (True, None, None)


def test_a_429_right_after_a_pause_waits_for_the_next_utc_day(app, db, user, add_key, vt_emulator, monkeypatch):
    monkeypatch.setitem(app.config, "VT_QUOTA_MINUTE_SECONDS", 0.5)
    monkeypatch.setitem(app.config, "VT_QUOTA_MARGIN_SECONDS", 0.1)
    key = add_key(user, per_minute=100, per_day=500)
    vt_emulator.add_key(key["key_value"], per_minute=100, per_day=0)  # spent elsewhere today
    me = as_user(db, user)

    with pytest.raises(QuotaExhausted) as first:
        selection.call(me, lookup)
    assert first.value.retry_after <= 0.6  # a minute's pause first: VirusTotal does not say which quota

    time.sleep(first.value.retry_after)
    with pytest.raises(QuotaExhausted) as second:
        selection.call(me, lookup)

    assert stored(db, key).exhausted_until == next_midnight()
    assert second.value.retry_after == pytest.approx(next_midnight().timestamp() - time.time(), abs=5)
    assert vt_emulator.statuses(key["key_value"]) == {200: 1, 429: 2}


def test_the_day_budget_stops_calls_before_virustotal_has_to(db, user, add_key, vt_emulator):
    key = add_key(user, per_minute=100, per_day=2)
    me = as_user(db, user)
    selection.call(me, lookup)  # with the check, the day's two requests

    with pytest.raises(QuotaExhausted) as raised:
        selection.call(me, lookup)

    assert raised.value.retry_after == pytest.approx(next_midnight().timestamp() - time.time(), abs=5)
    assert vt_emulator.statuses(key["key_value"]) == {200: 2}


def test_a_request_that_never_reached_virustotal_costs_no_token(app, db, user, add_key, vt_emulator, monkeypatch):
    key = add_key(user, per_minute=4, per_day=500)
    before = quota.usage(stored(db, key))
    monkeypatch.setitem(app.config, "VT_API_URL", closed_port_url())

    for _ in range(6):  # more than the minute's budget: none of them is counted
        with pytest.raises(VTConnectionError) as raised:
            selection.call(as_user(db, user), lookup)
        assert raised.value.reached is False and "connection refused" in str(raised.value)

    after = quota.usage(stored(db, key))
    assert (after["minute_used"], after["day_used"]) == (before["minute_used"], before["day_used"])
    assert stored(db, key).is_active is True


def test_a_request_dropped_after_it_went_out_keeps_its_token(db, user, add_key, vt_emulator):
    key = add_key(user, per_minute=4, per_day=500)
    before = quota.usage(stored(db, key))["minute_used"]
    vt_emulator.set_faults(drop_next=1)

    with pytest.raises(VTConnectionError) as raised:
        selection.call(as_user(db, user), lookup)

    # VirusTotal may have counted it, so the budget does too.
    assert raised.value.reached is True
    assert quota.usage(stored(db, key))["minute_used"] == before + 1

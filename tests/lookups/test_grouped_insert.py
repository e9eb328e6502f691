"""Lookups answered from the cache at the same moment are written together (scanner/grouped_insert.py),
and a user notices none of it: every lookup they were answered is in their history, a lookup whose
row cannot be written fails alone (the others' answers stand), and a row, once answered, stays
written whatever the request's own transaction does afterwards."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import requests
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from scanner.db_types import new_uuid, utcnow
from scanner.grouped_insert import GroupedInsert
from scanner.lookups.models import Lookup

THREADS = 16


def _row(user_id: uuid.UUID) -> dict:
    """A lookup answered from the cache, as `services._insert` hands it over: column -> value."""
    now = utcnow()
    return {
        "id": new_uuid(),
        "user_id": user_id,
        "ioc": "example.com",
        "ioc_type": "domain",
        "force_refresh": False,
        "status": "completed",
        "stage": "done",
        "attempts": 0,
        "polls": 0,
        "source": "cache",
        "provider_status": "ok",
        "verdict": "clean",
        "score": 0,
        "created_at": now,
        "finished_at": now,
        "total_ms": 1,
    }


def _written(db, rows: list[dict]) -> int:
    """How many of these rows a fresh connection sees committed."""
    with db.engine.connect() as connection:
        query = select(func.count()).select_from(Lookup).where(Lookup.id.in_([row["id"] for row in rows]))
        return connection.execute(query).scalar_one()


def _start_writers(app, grouped: GroupedInsert, rows: list[dict], ready: Callable[[int], None]):
    """A thread per row, with its own app context as a request has; each calls `ready(index)`, then
    writes its row. Returns the threads and the error each got, by row index."""
    errors: dict[int, BaseException] = {}

    def write(index: int) -> None:
        with app.app_context():
            ready(index)
            try:
                grouped.write(rows[index])
            except Exception as error:
                errors[index] = error

    threads = [threading.Thread(target=write, args=(index,)) for index in range(len(rows))]
    for thread in threads:
        thread.start()
    return threads, errors


def _joined(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a write never returned"


def _write_together(app, rows: list[dict]) -> dict[int, BaseException]:
    barrier = threading.Barrier(len(rows))  # they all arrive together: most queue behind a leader
    threads, errors = _start_writers(app, GroupedInsert(Lookup.__table__), rows, lambda _: barrier.wait(10))
    _joined(threads)
    return errors


def test_rows_written_at_once_are_all_committed(app, db, user):
    rows = [_row(uuid.UUID(user.id)) for _ in range(THREADS)]

    errors = _write_together(app, rows)

    assert errors == {}
    assert _written(db, rows) == THREADS


def test_a_row_that_cannot_be_written_fails_its_own_caller_only(app, db, user):
    rows = [_row(uuid.UUID(user.id)) for _ in range(THREADS)]
    bad = THREADS // 2
    rows[bad]["user_id"] = new_uuid()  # its user is gone: a foreign key violation

    errors = _write_together(app, rows)

    # Whether the bad row shared a batch depends on timing; either way it fails alone.
    assert {index: type(error) for index, error in errors.items()} == {bad: IntegrityError}
    assert _written(db, rows) == THREADS - 1


def test_a_row_outlives_a_rollback_of_the_callers_transaction(db, user):
    db.session.execute(select(Lookup.id).limit(1))  # the request's session has begun a transaction
    row = _row(uuid.UUID(user.id))

    GroupedInsert(Lookup.__table__).write(row)
    db.session.rollback()  # e.g. the request fails after it was answered

    assert _written(db, [row]) == 1  # written on a connection of its own, committed already


def _queued(grouped: GroupedInsert, count: int) -> None:
    """Wait (bounded) until a row is being written and `count` rows queue behind it."""
    deadline = time.monotonic() + 10
    while not (grouped._writing and len(grouped._queue) == count):
        assert time.monotonic() < deadline, f"{len(grouped._queue)} rows queued, not {count}"
        time.sleep(0.005)


def test_a_bad_row_between_good_ones_in_a_batch_fails_alone(app, db, user):
    """What the test above meets only by chance: good rows before and after a bad one, in one batch."""
    grouped = GroupedInsert(Lookup.__table__)
    rows = [_row(uuid.UUID(user.id)) for _ in range(6)]
    bad = 3
    rows[bad]["user_id"] = new_uuid()
    turns = [threading.Event() for _ in rows]
    with db.engine.connect() as holder:
        # An uncommitted copy of the first row holds the first writer's INSERT while the others queue.
        holder.execute(insert(Lookup.__table__), rows[0])
        threads, errors = _start_writers(app, grouped, rows, lambda index: turns[index].wait(10))
        for index, turn in enumerate(turns):
            turn.set()  # in order, so the batch behind the first row is [good, good, bad, good, good]
            _queued(grouped, index)
        holder.rollback()
    _joined(threads)

    assert {index: type(error) for index, error in errors.items()} == {bad: IntegrityError}
    assert _written(db, rows) == len(rows) - 1


class _Stopped(BaseException):
    """What a request's greenlet gets when its worker shuts down (GreenletExit)."""


def test_a_request_stopped_while_it_waits_leaves_the_others_written(app, db, user, monkeypatch):
    import scanner.grouped_insert as grouped_insert

    class StoppingEvent(threading.Event):
        def wait(self, timeout=None):
            raise _Stopped

    class Row(grouped_insert._Row):
        def __init__(self, values):
            super().__init__(values)
            if values["ioc"] == "stopped.example":
                self.done = StoppingEvent()

    monkeypatch.setattr(grouped_insert, "_Row", Row)
    grouped = GroupedInsert(Lookup.__table__)
    first, stopped, waiting, later = (_row(uuid.UUID(user.id)) for _ in range(4))
    stopped["ioc"] = "stopped.example"
    outcomes: dict[str, object] = {}

    def write(name: str, row: dict) -> None:
        with app.app_context():
            try:
                grouped.write(row)
                outcomes[name] = "written"
            except BaseException as error:
                outcomes[name] = type(error)

    with db.engine.connect() as holder:
        holder.execute(insert(Lookup.__table__), first)  # holds the first writer's INSERT
        threads = [threading.Thread(target=write, args=("first", first))]
        threads[0].start()
        _queued(grouped, 0)
        threads.append(threading.Thread(target=write, args=("stopped", stopped)))  # stops while it waits
        threads[1].start()
        deadline = time.monotonic() + 10
        while "stopped" not in outcomes:  # (its thread ends only after the lock: the app's teardown writes)
            assert time.monotonic() < deadline, "the stopped request never stopped"
            time.sleep(0.005)
        threads.append(threading.Thread(target=write, args=("waiting", waiting)))
        threads[2].start()
        _queued(grouped, 1)
        holder.rollback()
    _joined(threads)
    after = threading.Thread(target=write, args=("later", later))
    after.start()
    _joined([after])  # no row is left waiting for a writer that is gone

    assert outcomes == {"first": "written", "stopped": _Stopped, "waiting": "written", "later": "written"}
    assert _written(db, [first, waiting, later]) == 3 and _written(db, [stopped]) == 0


def test_cached_answers_asked_at_once_are_each_in_the_history(client, user, add_key, vt_emulator, start_web):
    """Through gunicorn (gevent, as deployed): concurrent answers from the cache, each with its lookup."""
    add_key(user)
    server = start_web()
    first = requests.post(f"{server.url}/api/check_ioc", json={"ioc": "example.com"}, headers=user.headers, timeout=30)
    assert first.status_code == 200, first.text  # from VirusTotal: the cache holds it now
    barrier = threading.Barrier(THREADS)
    answers: list[requests.Response] = []

    def ask() -> None:
        barrier.wait(10)
        url = f"{server.url}/api/check_ioc"
        answers.append(requests.post(url, json={"ioc": "example.com"}, headers=user.headers, timeout=30))

    threads = [threading.Thread(target=ask) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    _joined(threads)

    assert [(r.status_code, r.json()["source"]) for r in answers] == [(200, "cache")] * THREADS
    ids = {r.json()["lookup_id"] for r in answers}
    assert len(ids) == THREADS
    for lookup_id in ids:
        read = requests.get(f"{server.url}/api/lookup/{lookup_id}", headers=user.headers, timeout=30)
        assert read.status_code == 200, read.text
        assert read.json()["source"] == "cache"
    history = client.get("/api/lookups?per_page=100", headers=user.headers).json
    assert history["pagination"]["total_items"] == THREADS + 1
    assert ids <= {row["id"] for row in history["lookups"]}

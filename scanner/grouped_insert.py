"""Rows that concurrent requests each write alone, INSERTed together: a group commit in the web
process.

A lookup answered from the cache writes one row and nothing else. Alone, that INSERT (a pooled
connection, the statement, its round trip and its commit) cost the web process as much as the rest
of the answer. Requests in flight together instead hand their rows to one of them, which writes
them all in one statement and commit while the others wait: each request still returns only
once its own row is committed, and an error reaches every request whose row it concerns.

The first request to arrive writes; rows that arrive while it writes go out together with the
next, written by the first of them. Without concurrency (a sync worker, the test client) a row goes
out alone, as it would without this.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

from .errors import ServiceUnavailable
from .extensions import db
from .insert_many import many_rows


class _Row:
    __slots__ = ("values", "done", "lead", "written", "error")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.done = threading.Event()  # written, or its turn to write (lead)
        self.lead = self.written = False
        self.error: BaseException | None = None


class GroupedInsert:
    def __init__(self, table: Table) -> None:
        self._table = table
        self._lock = threading.Lock()
        self._queue: list[_Row] = []
        self._writing = False

    def write(self, values: dict[str, Any]) -> None:
        """INSERT one row (column -> value) and commit it, with the rows of requests in flight."""
        row = _Row(values)
        with self._lock:
            self._queue.append(row)
            lead = not self._writing
            self._writing = True
        if not lead:
            try:
                row.done.wait()
            except BaseException:  # this request stopped waiting (its worker shutting down)
                with self._lock:
                    self._leave(row)
                raise
        if lead or row.lead:
            self._write_queue(row)
        if row.error is not None:
            raise row.error

    def _write_queue(self, mine: _Row) -> None:
        batch: list[_Row] = []
        try:
            time.sleep(0)  # the requests that are ready to run queue their rows first
            with self._lock:
                batch, self._queue = self._queue, []
            self._insert(batch)
        except BaseException as error:
            # The database gone, or this writer stopped mid-way (its worker shutting down): each
            # row not written fails with it; the others' requests are not handed the writer's exit.
            stopped = ServiceUnavailable("The lookup may not have been recorded; ask again")
            for row in batch:
                if not row.written and row.error is None:
                    row.error = error if isinstance(error, Exception) else stopped
            if not isinstance(error, Exception):
                with self._lock:
                    self._leave(mine)
                raise
        finally:
            with self._lock:
                self._hand_on()
            for row in batch:
                if row is not mine:
                    row.done.set()

    def _leave(self, row: _Row) -> None:
        """A row whose request is gone leaves the queue, and passes on the writer's role it was
        handed (called with the lock held)."""
        if row in self._queue:
            self._queue.remove(row)
        if row.lead:
            row.lead = False
            self._hand_on()

    def _hand_on(self) -> None:
        """The first row queued writes next; with none, the next to arrive does (lock held)."""
        if self._queue:
            self._queue[0].lead = True
            self._queue[0].done.set()
        else:
            self._writing = False

    def _insert(self, batch: list[_Row]) -> None:
        by_columns: dict[tuple[str, ...], list[_Row]] = {}
        for row in batch:
            by_columns.setdefault(tuple(row.values), []).append(row)
        for rows in by_columns.values():
            try:
                self._commit(rows)
            except IntegrityError as error:
                if len(rows) == 1:
                    rows[0].error = error
                    continue
                # One row's fault (its user deleted meanwhile) is its request's alone.
                for row in rows:
                    try:
                        self._commit([row])
                    except IntegrityError as error:
                        row.error = error

    def _commit(self, rows: list[_Row]) -> None:
        # A connection of its own, not the session's: a transaction the writing request has open
        # must not hold the other requests' rows until it commits (or roll them back). All of the
        # rows or none: one statement needs no transaction around it (no BEGIN and COMMIT to wait
        # for); an executemany does, or SQLite would keep the rows before a failing one.
        with db.engine.connect() as connection:
            statement, parameters = many_rows(self._table, connection.dialect, [row.values for row in rows])
            if isinstance(parameters, dict):
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(statement, parameters)
            else:
                with connection.begin():
                    connection.execute(statement, parameters)
        for row in rows:
            row.written = True

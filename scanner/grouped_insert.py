"""Rows that concurrent requests each write alone, INSERTed together: a group commit in the web
process.

A lookup answered from the cache writes one row and nothing else. Alone, that INSERT (a pooled
connection, the statement, its round trip and its commit) cost the web process as much as the rest
of the answer. Requests in flight together instead hand their rows to one of them, which writes
them all in one autocommitted statement while the others wait: each request still returns only
once its own row is committed, and an error reaches every request whose row it concerns.

The first request to arrive writes; rows that arrive while it writes go out together with the
next, written by the first of them. Without concurrency (a sync worker, the test client) a row goes
out alone, as it would without this.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError

from .db_session import autocommit_engine
from .errors import ServiceUnavailable
from .extensions import db


class _Row:
    __slots__ = ("values", "done", "lead", "error")

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.done = threading.Event()  # written, or its turn to write (lead)
        self.lead = False
        self.error: BaseException | None = None


class GroupedInsert:
    def __init__(self, table: Table) -> None:
        self._statement = insert(table)
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
            row.done.wait()
        if lead or row.lead:
            self._write_queue(row)
        if row.error is not None:
            raise row.error

    def _write_queue(self, mine: _Row) -> None:
        time.sleep(0)  # the requests that are ready to run queue their rows first
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._insert(batch)
        except BaseException as error:
            # A writer stopped mid-way (its worker shutting down) leaves the others a retry, not
            # its own exit to raise.
            stopped = ServiceUnavailable("The answer could not be recorded; try again")
            for row in batch:
                row.error = row.error or (error if isinstance(error, Exception) or row is mine else stopped)
            raise
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._writing = False
            for row in batch:
                if row is not mine:
                    row.done.set()

    def _insert(self, batch: list[_Row]) -> None:
        by_columns: dict[tuple[str, ...], list[_Row]] = {}
        for row in batch:
            by_columns.setdefault(tuple(row.values), []).append(row)
        # A connection of its own, not the session's: a transaction the writing request has open
        # must not hold the other requests' rows until it commits (or roll them back).
        with autocommit_engine(db.engine).connect() as connection:
            for rows in by_columns.values():
                try:
                    connection.execute(self._statement, [row.values for row in rows])
                except IntegrityError:
                    if len(rows) == 1:
                        raise
                    # One row's fault (its user deleted meanwhile) is its request's alone.
                    for row in rows:
                        try:
                            connection.execute(self._statement, [row.values])
                        except IntegrityError as error:
                            row.error = error

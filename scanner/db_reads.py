"""Requests that only read run their queries on a connection in autocommit: no BEGIN and no
ROLLBACK around them, which on PostgreSQL were two of a small read's three round trips (the query
itself is the other; a pooled connection's life is checked without one, scanner/db_liveness.py).
Each query then sees what is committed when it runs, on its own; a read of one row, or of one
page and its count, does not notice.

Used on the most frequent reads, and by event streams between their reads.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

from .db_session import AUTOCOMMIT
from .extensions import db


@contextlib.contextmanager
def autocommit() -> Iterator[None]:
    """Within: the session's queries go to an autocommit connection, unless it already uses a
    connection (the sign-in check may have read the user), whose transaction they then join. No
    session is made and no connection taken before a query needs one (a read answered from memory
    or the cache makes neither), and the connection taken goes back to the pool on the way out;
    the session's objects stay as they are."""
    if holds_connection():
        yield
        return
    began = AUTOCOMMIT.set(True)
    try:
        yield
    finally:
        AUTOCOMMIT.reset(began)
        if db.session.registry.has() and (transaction := db.session().get_transaction()) is not None:
            transaction.close()


def holds_connection() -> bool:
    """Whether this request's session has a connection, in a transaction that has begun."""
    if not db.session.registry.has():
        return False
    transaction = db.session().get_transaction()
    # A transaction begun without a connection (a user put into the session) has sent nothing
    # yet; SQLAlchemy has no public way to ask whether it holds one.
    return transaction is not None and bool(transaction._connections)


def read_only(view: Callable) -> Callable:
    """For a view that writes nothing to the database. Its connection goes back to the pool as soon
    as the response is built, not after it is sent: under gevent, requests in flight beyond the
    pool's size each opened a connection of their own."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        with autocommit():
            return view(*args, **kwargs)

    return wrapper

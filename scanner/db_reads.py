"""Requests that only read run their queries on a connection in autocommit: no BEGIN and no
ROLLBACK around them, which on PostgreSQL is two of a small read's four round trips (the pool's
liveness ping and the query itself are the others). Each query then sees what is committed when
it runs, on its own; a read of one row, or of one page and its count, does not notice.

Used on the most frequent reads and by event streams between their reads.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .db_session import AUTOCOMMIT
from .extensions import db


def autocommit() -> None:
    """Send the session's next queries to an autocommit connection, unless it already uses a
    connection (the sign-in check may have read the user): its reads then go on in that
    transaction. No connection is taken before a query needs one (a read answered from the cache
    takes none)."""
    session = db.session()
    transaction = session.get_transaction()
    # A transaction begun without a connection (a remembered user attached to the session) has
    # sent nothing yet; SQLAlchemy has no public way to ask whether it holds one.
    if transaction is None or not transaction._connections:
        session.info[AUTOCOMMIT] = True


def read_only(view: Callable) -> Callable:
    """For a view that writes nothing to the database."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        autocommit()
        return view(*args, **kwargs)

    return wrapper

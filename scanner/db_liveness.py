"""A pooled PostgreSQL connection is checked for life as it leaves the pool, without a round trip.

SQLAlchemy's pool_pre_ping sends a query on every checkout: on a status read that is one of its two
round trips, each costing the web process more CPU than the rest of the query's work. A server that
goes away (a restart, pg_terminate_backend, a proxy's idle timeout) closes the connection's socket,
which makes it readable; a healthy connection idle in the pool has nothing to read. So the check is
a zero-timeout poll of the socket, and a readable or closed one is discarded: the pool then hands
out another or opens a new one (SQLAlchemy retries a checkout refused with DisconnectionError).
A peer that vanished without closing (a cable pulled) passes, as a ping would have hung on it.
"""

from __future__ import annotations

import select

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

try:  # the real poll: gevent's would yield to its hub for an answer that is ready at once
    from gevent.monkey import get_original

    _poll = get_original("select", "poll")
except ImportError:  # pragma: no cover - gevent is a dependency
    _poll = select.poll


def _alive(dbapi_connection, record, proxy) -> None:
    if dbapi_connection.closed:
        raise DisconnectionError("the connection was closed")
    watch = _poll()
    watch.register(dbapi_connection.pgconn.socket, select.POLLIN)
    if watch.poll(0):  # data or end of file on an idle connection: the server is gone or leaving
        raise DisconnectionError("the server closed the connection")


def watch_liveness(engine: Engine) -> None:
    """Check the engine's connections at checkout (PostgreSQL with psycopg; others are pinged)."""
    event.listen(engine, "checkout", _alive)

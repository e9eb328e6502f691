"""The session every request and task uses: Flask-SQLAlchemy's, which can be told to send the rest
of its queries to an autocommit connection (scanner/db_reads.py) before it has taken one."""

from __future__ import annotations

import weakref
from contextvars import ContextVar

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.engine import Engine

# Set while a block's queries go to autocommit connections (a context variable: each request's,
# greenlet's or thread's own), so that no session need exist before a query does.
AUTOCOMMIT: ContextVar[bool] = ContextVar("scanner.autocommit", default=False)
_autocommit_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine's twin whose connections run in autocommit; same pool, same connections."""
    if engine not in _autocommit_engines:
        _autocommit_engines[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return _autocommit_engines[engine]


class Session(FlaskSession):
    def get_bind(self, *args, **kwargs):
        bind = super().get_bind(*args, **kwargs)
        if AUTOCOMMIT.get() and isinstance(bind, Engine):
            return _autocommit(bind)
        return bind

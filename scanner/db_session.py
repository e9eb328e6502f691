"""The session every request and task uses: Flask-SQLAlchemy's, which can be told to send the rest
of its queries to an autocommit connection (scanner/db_reads.py) before it has taken one."""

from __future__ import annotations

import weakref

from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.engine import Engine

AUTOCOMMIT = "scanner.autocommit"
_autocommit_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _autocommit(engine: Engine) -> Engine:
    """The engine's twin whose connections run in autocommit; same pool, same connections."""
    if engine not in _autocommit_engines:
        _autocommit_engines[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return _autocommit_engines[engine]


class Session(FlaskSession):
    def get_bind(self, *args, **kwargs):
        bind = super().get_bind(*args, **kwargs)
        if self.info.get(AUTOCOMMIT) and isinstance(bind, Engine):
            return _autocommit(bind)
        return bind

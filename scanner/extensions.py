"""Extension singletons, bound to an app in `create_app` (the rate limiter's is in `rate_limits`)."""

from __future__ import annotations

from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

from .db_session import Session
from .errors import ScannerApi

# Named constraints so Alembic can alter them on every database, SQLite included.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


db = SQLAlchemy(metadata=metadata, session_options={"class_": Session})
api = ScannerApi()
migrate = Migrate()
jwt = JWTManager()
cache = Cache()

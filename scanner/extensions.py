"""Extension singletons, bound to an app in `create_app`."""

from __future__ import annotations

from flask import request
from flask_caching import Cache
from flask_jwt_extended import JWTManager, get_jwt_identity, verify_jwt_in_request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

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


def rate_limit_key() -> str:
    """Limit a signed-in caller per account, anyone else per address."""
    if request.headers.get("Authorization", "").startswith("Bearer "):
        try:
            verify_jwt_in_request(optional=True)
            identity = get_jwt_identity()
        except Exception:  # an invalid token is answered by the route, not by the limiter
            identity = None
        if identity:
            return f"user:{identity}"
    return f"ip:{get_remote_address()}"


db = SQLAlchemy(metadata=metadata)
migrate = Migrate()
jwt = JWTManager()
limiter = Limiter(key_func=rate_limit_key)
cache = Cache()

"""Application factory and Celery wiring."""

from __future__ import annotations

import os

from celery import Celery, Task
from flask import Flask, Request, Response
from flask.sessions import NullSession, SessionInterface, SessionMixin
from flask_smorest import Blueprint
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Config, load_config

from .db_liveness import watch_liveness
from .errors import register_error_handlers, register_jwt_handlers
from .extensions import api, cache, db, jwt, migrate
from .logs import configure_logging, connect_celery_logging
from .rate_limits import limiter
from .request_args.ids import ID_PARAMETER_SCHEMA, IdConverter
from .request_args.openapi import ErrorResponsesPlugin
from .request_parser import RequestParser

# Set before any routes module is imported: `@blp.arguments` binds the parser as it decorates.
Blueprint.ARGUMENTS_PARSER = RequestParser()

# Every module that defines Celery tasks; the worker imports them at start.
TASK_MODULES = ["scanner.scans.tasks", "scanner.lookups.tasks", "scanner.housekeeping"]


def create_app(config: str | Config | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    cfg = config if isinstance(config, Config) else load_config(config)
    app.config.from_object(cfg)
    app.json.sort_keys = False
    # `/api/keys` and `/api/keys/` are one resource: a redirect would drop a POST body's meaning
    # for many clients and answer with HTML instead of the envelope.
    app.url_map.strict_slashes = False
    app.url_map.converters["id"] = IdConverter
    _private_instance_dir(app.config["INSTANCE_DIR"])
    app.session_interface = NoCookieSessions()
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    db.init_app(app)
    if not app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"]:
        with app.app_context():
            watch_liveness(db.engine)
    app.teardown_appcontext(_end_session)  # runs before Flask-SQLAlchemy's own (reverse order)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    jwt.init_app(app)
    register_jwt_handlers(jwt)
    from .auth.access import init_authentication

    # The token is checked once, before the limiter, which counts a signed-in caller per account.
    init_authentication(app)
    limiter.init_app(app)
    cache.init_app(app)
    # The plugin documents our error envelope and the request parser's refusals on every operation.
    api.init_app(app, spec_kwargs={"extra_plugins": [ErrorResponsesPlugin()]})
    api.register_converter(IdConverter, lambda converter: ID_PARAMETER_SCHEMA)
    register_error_handlers(app)

    from . import models  # noqa: F401  registers every table on the metadata

    _register_blueprints(app)
    from .system.middleware import init_middleware

    init_middleware(app)
    from .metrics.store import init_shared_counters
    from .providers.metrics import init_request_counting
    from .system.prometheus import init_prometheus

    init_shared_counters(app)
    init_request_counting(app)
    init_prometheus(app)
    from .api_keys.cli import register_cli as register_keys_cli
    from .auth.cli import register_cli as register_auth_cli

    register_auth_cli(app)
    register_keys_cli(app)
    celery_init_app(app)
    if app.config["TRUSTED_PROXIES"]:
        # Behind a router every client would otherwise share its address: one attacker's failed
        # sign-ins would lock everyone out, and the per-address rate limits would be shared.
        # Outermost, so that everything behind it (system/middleware.py too) sees the client's.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    return app


class NoCookieSessions(SessionInterface):
    """No cookie session: the API signs in with bearer tokens and its pages keep theirs in the
    browser's storage. Flask's default would build a signing serializer on every request (a secret
    key is set) only to find no cookie."""

    def open_session(self, app: Flask, request: Request) -> NullSession:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def _private_instance_dir(path: str) -> None:
    """The instance folder holds the SQLite database (password hashes, every user's history), the
    generated encryption key and the blobs: only the service's own account may enter it."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_uid == os.getuid():  # one created earlier, before this rule
        os.chmod(path, 0o700)


def _register_blueprints(app: Flask) -> None:
    from .api_keys.routes import blp as keys_blp
    from .auth.routes import blp as auth_blp
    from .files.routes import blp as files_blp
    from .scans.results.routes import blp as results_blp
    from .scans.routes import blp as scans_blp
    from .system.routes import blp as system_blp

    for blp in (
        system_blp,
        auth_blp,
        keys_blp,
        files_blp,
        scans_blp,
        results_blp,
    ):
        api.register_blueprint(blp)
    from .admin.routes import blp as admin_blp
    from .providers.routes import blp as providers_blp

    api.register_blueprint(providers_blp)
    api.register_blueprint(admin_blp)
    from .system.docs import blp as docs_blp
    from .ui.routes import blp as ui_blp

    app.register_blueprint(docs_blp)
    app.register_blueprint(ui_blp)
    from .lookups.bulk_routes import blp as bulk_blp
    from .lookups.report_routes import blp as reports_blp
    from .lookups.routes import blp as lookups_blp
    from .lookups.streams import blp as lookup_streams_blp
    from .scans.streams import blp as scan_streams_blp

    for blp in (lookups_blp, reports_blp, bulk_blp, lookup_streams_blp, scan_streams_blp):
        api.register_blueprint(blp)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    # Web, worker and beat share one SQLite file in embedded mode: WAL lets readers run beside a
    # writer and the busy timeout makes writers queue instead of failing with "database is locked".
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _tune_sqla_broker(celery_app: Celery) -> None:
    # kombu's SQLAlchemy transport hands its transport options to create_engine(), which rejects
    # `polling_interval`; the interval is a class attribute of that transport instead. It has no
    # visibility timeout: a message it delivered is never delivered again.
    if not str(celery_app.conf.broker_url).startswith("sqla+"):
        return
    from kombu.transport.sqlalchemy import Transport

    options = dict(celery_app.conf.broker_transport_options or {})
    Transport.polling_interval = options.pop("polling_interval", Transport.polling_interval)
    options.pop("visibility_timeout", None)
    celery_app.conf.broker_transport_options = options


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    _tune_sqla_broker(celery_app)
    from .schedule import beat_schedule

    celery_app.conf.beat_schedule = beat_schedule(app)
    celery_app.conf.include = TASK_MODULES
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    connect_celery_logging()
    from .system.heartbeat import connect_worker_signals

    connect_worker_signals(app)
    return celery_app


def _end_session(exc: BaseException | None) -> None:
    """End the request's session. Its closing ROLLBACK fails when the database has cut the
    connection meanwhile (a restart, a terminated backend): the pool drops that connection, and the
    answer already made stands instead of becoming a 500."""
    try:
        db.session.remove()
    except DBAPIError:
        db.session.registry.clear()

"""Configuration, read from the environment only (and a `.env` file through python-dotenv).

With nothing set everything runs embedded: SQLite for data, kombu's SQLite transport for the
Celery broker, a file-system cache shared by the processes of one machine, blobs under
`instance/`. `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from dotenv import load_dotenv

load_dotenv()

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # noqa: S105  refused by ProductionConfig


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


def _per_type(prefix: str, **defaults: int) -> dict[str, int]:
    """{"file": ..., "url": ...} from PREFIX_FILE, PREFIX_URL, ... (seconds)."""
    return {name: env_int(f"{prefix}_{name.upper()}", value) for name, value in defaults.items()}


def _database_url(url: str) -> str:
    # Heroku-style platforms hand out postgres:// URLs; SQLAlchemy wants the psycopg 3 driver named.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Config:
    def __init__(self) -> None:
        instance = Path(env("INSTANCE_DIR", str(BASE_DIR / "instance"))).resolve()
        self.INSTANCE_DIR = str(instance)
        self.SECRET_KEY = env("SECRET_KEY", DEFAULT_SECRET)
        self.JWT_SECRET_KEY = env("JWT_SECRET_KEY", self.SECRET_KEY)
        self.JWT_ALGORITHM = "HS256"
        self.JWT_DECODE_ALGORITHMS = ["HS256"]
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 15 * 60))
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 7 * 86400))
        self.JWT_TOKEN_LOCATION = ["headers"]

        self.SQLALCHEMY_DATABASE_URI = _database_url(env("DATABASE_URL", f"sqlite:///{instance / 'scanner.db'}"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.REDIS_URL = env("REDIS_URL")

        broker = env("CELERY_BROKER_URL", self.REDIS_URL or f"sqla+sqlite:///{instance / 'broker.sqlite'}")
        self.CELERY = {
            "broker_url": broker,
            "task_ignore_result": True,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {"polling_interval": env_float("BROKER_POLL_SECONDS", 1.0)},
            "beat_schedule_filename": str(instance / "celerybeat-schedule"),
            "timezone": "UTC",
        }
        self.TASK_ALWAYS_EAGER = False

        if self.REDIS_URL:
            self.CACHE_TYPE = "RedisCache"
            self.CACHE_REDIS_URL = env("CACHE_REDIS_URL", self.REDIS_URL)
            self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", self.REDIS_URL)
        else:
            # A file-system cache is shared by web and worker processes of one machine, so a
            # write in a worker invalidates what the web processes serve.
            self.CACHE_TYPE = "FileSystemCache"
            self.CACHE_DIR = str(instance / "cache")
            self.CACHE_THRESHOLD = 10000
            self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")
        self.CACHE_DEFAULT_TIMEOUT = env_int("CACHE_DEFAULT_TIMEOUT", 300)
        self.CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "scanner:")
        self.RATELIMIT_DEFAULT = env("RATELIMIT_DEFAULT", "600 per minute")
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        # A rate-limit store that is down must not fail requests (lookups answer from the database
        # without Redis): limits go on counting in this process's memory until the store is back,
        # and an error that still slips through (two threads noticing at once) is logged, not raised.
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_SWALLOW_ERRORS = True

        self.BLOB_DIR = env("BLOB_DIR", str(instance / "blobs"))
        self.MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 650 * 1024 * 1024)
        # Room for the multipart envelope around the largest allowed file.
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_BYTES + 1024 * 1024
        self.MAX_FORM_MEMORY_SIZE = 1024 * 1024
        # A JSON body is a few fields (an indicator, a note, a key): MAX_CONTENT_LENGTH is sized for
        # uploads, and a JSON body that large would be held and parsed whole in memory.
        self.MAX_JSON_BYTES = env_int("MAX_JSON_BYTES", 1024 * 1024)

        self.ENCRYPTION_KEYS = env("ENCRYPTION_KEYS")  # comma-separated Fernet keys, newest first
        # Checking a key value is a VirusTotal request; per user, across create, update and validate.
        self.KEY_CHECK_RATE_LIMIT = env("KEY_CHECK_RATE_LIMIT", "20 per minute")

        self.VT_API_URL = env("VT_API_URL", "https://www.virustotal.com/api/v3")
        self.VT_CONNECT_TIMEOUT = env_float("VT_CONNECT_TIMEOUT", 5.0)
        self.VT_READ_TIMEOUT = env_float("VT_READ_TIMEOUT", 60.0)
        self.VT_DEFAULT_PER_MINUTE = env_int("VT_DEFAULT_PER_MINUTE", 4)
        self.VT_DEFAULT_PER_DAY = env_int("VT_DEFAULT_PER_DAY", 500)
        # Length of a quota "minute"; shortened only to make quota tests fast.
        self.VT_QUOTA_MINUTE_SECONDS = env_float("VT_QUOTA_MINUTE_SECONDS", 60.0)
        # Our window starts when a token is taken, a little before VirusTotal sees the request:
        # each token is held this much longer so network jitter never puts five calls in its minute.
        self.VT_QUOTA_MARGIN_SECONDS = env_float("VT_QUOTA_MARGIN_SECONDS", 1.0)

        self.SCAN_REPORT_MAX_AGE_DAYS = env_float("SCAN_REPORT_MAX_AGE_DAYS", 7)
        self.SCAN_REUSE_HOURS = env_float("SCAN_REUSE_HOURS", 24)
        self.SCAN_POLL_INTERVALS = [float(x) for x in env("SCAN_POLL_INTERVALS", "15,30,60,120").split(",")]
        self.SCAN_DEADLINE_SECONDS = env_float("SCAN_DEADLINE_SECONDS", 30 * 60)
        self.SCAN_RETRY_BASE_SECONDS = env_float("SCAN_RETRY_BASE_SECONDS", 5.0)
        self.SCAN_RETRY_MAX_SECONDS = env_float("SCAN_RETRY_MAX_SECONDS", 300.0)
        self.SCAN_SWEEP_SECONDS = env_float("SCAN_SWEEP_SECONDS", 60.0)
        self.SCAN_MAX_ATTEMPTS = env_int("SCAN_MAX_ATTEMPTS", 8)
        # How long a task owns a scan before another may pick it up (the sweep, after a crash).
        self.SCAN_LEASE_SECONDS = env_float("SCAN_LEASE_SECONDS", 120.0)
        self.SCAN_STUCK_GRACE_SECONDS = env_float("SCAN_STUCK_GRACE_SECONDS", 120.0)
        # Finished reports and history pages stay cached this long unless a change retires them first.
        self.RESULTS_CACHE_SECONDS = env_int("RESULTS_CACHE_SECONDS", 300)
        self.RESULTS_EXPORT_MAX_ROWS = env_int("RESULTS_EXPORT_MAX_ROWS", 10000)

        # Indicator lookups. Per VirusTotal type (file, url, domain, ip): how long a cached answer is
        # served, and how old our stored report may be (since we fetched it) before VirusTotal is asked again.
        self.LOOKUP_CACHE_SECONDS = _per_type("LOOKUP_CACHE_SECONDS", file=3600, url=1800, domain=3600, ip=3600)
        self.LOOKUP_FRESH_SECONDS = _per_type("LOOKUP_FRESH_SECONDS", file=86400, url=21600, domain=43200, ip=43200)
        # "VirusTotal has never seen this hash" is remembered (in the cache only) this long.
        self.LOOKUP_NOT_FOUND_SECONDS = env_int("LOOKUP_NOT_FOUND_SECONDS", 900)
        self.LOOKUP_POLL_INTERVALS = [
            float(x) for x in env("LOOKUP_POLL_INTERVALS", ",".join(map(str, self.SCAN_POLL_INTERVALS))).split(",")
        ]
        self.LOOKUP_ANALYSIS_DEADLINE_SECONDS = env_float("LOOKUP_ANALYSIS_DEADLINE_SECONDS", 30 * 60)
        # A lookup waiting for quota gives up after this; a spent daily quota frees at 00:00 UTC.
        self.LOOKUP_MAX_WAIT_SECONDS = env_float("LOOKUP_MAX_WAIT_SECONDS", 26 * 3600)
        self.LOOKUP_RETRY_BASE_SECONDS = env_float("LOOKUP_RETRY_BASE_SECONDS", self.SCAN_RETRY_BASE_SECONDS)
        self.LOOKUP_RETRY_MAX_SECONDS = env_float("LOOKUP_RETRY_MAX_SECONDS", self.SCAN_RETRY_MAX_SECONDS)
        self.LOOKUP_MAX_ATTEMPTS = env_int("LOOKUP_MAX_ATTEMPTS", self.SCAN_MAX_ATTEMPTS)
        self.LOOKUP_LEASE_SECONDS = env_float("LOOKUP_LEASE_SECONDS", self.SCAN_LEASE_SECONDS)
        self.LOOKUP_SWEEP_SECONDS = env_float("LOOKUP_SWEEP_SECONDS", self.SCAN_SWEEP_SECONDS)
        self.LOOKUP_STUCK_GRACE_SECONDS = env_float("LOOKUP_STUCK_GRACE_SECONDS", self.SCAN_STUCK_GRACE_SECONDS)
        self.BULK_MAX_IOCS = env_int("BULK_MAX_IOCS", 10000)
        self.BULK_MAX_BYTES = env_int("BULK_MAX_BYTES", 10 * 1024 * 1024)
        # One run of a bulk job's task works this long, then yields the worker to other tasks.
        self.BULK_SLICE_SECONDS = env_float("BULK_SLICE_SECONDS", 20.0)
        # Server-Sent Events: each open stream holds a gunicorn thread, so they are capped and end.
        self.STREAM_MAX_PER_USER = env_int("STREAM_MAX_PER_USER", 3)
        self.STREAM_MAX_SECONDS = env_float("STREAM_MAX_SECONDS", 600.0)
        self.STREAM_HEARTBEAT_SECONDS = env_float("STREAM_HEARTBEAT_SECONDS", 15.0)
        # Without Redis, streams re-read the database this often; with Redis, events wake them and the
        # database is re-read this often only as a safety net.
        self.STREAM_POLL_SECONDS = env_float("STREAM_POLL_SECONDS", 1.0)
        self.STREAM_RECHECK_SECONDS = env_float("STREAM_RECHECK_SECONDS", 10.0)

        # Sign-in protection (scanner/auth/lockout.py, README "Sign-in protection"): failures per
        # account from one address; per account across addresses before delays start; per address
        # across accounts, high because many analysts may share one office address.
        self.LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
        self.LOGIN_ACCOUNT_MAX_FAILURES = env_int("LOGIN_ACCOUNT_MAX_FAILURES", 10)
        self.LOGIN_ACCOUNT_DELAY_SECONDS = env_int("LOGIN_ACCOUNT_DELAY_SECONDS", 30)
        self.LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 100)
        self.LOGIN_WINDOW_SECONDS = env_int("LOGIN_WINDOW_SECONDS", 15 * 60)
        self.AUTH_RATE_LIMIT = env("AUTH_RATE_LIMIT", "20 per minute")  # register, login, token; per address
        # argon2id cost (RFC 9106 low-memory profile); raising it rehashes each password at its next login.
        self.PASSWORD_HASH_TIME_COST = env_int("PASSWORD_HASH_TIME_COST", 3)
        self.PASSWORD_HASH_MEMORY_KIB = env_int("PASSWORD_HASH_MEMORY_KIB", 64 * 1024)
        self.PASSWORD_HASH_PARALLELISM = env_int("PASSWORD_HASH_PARALLELISM", 4)

        self.WORKER_HEARTBEAT_SECONDS = env_float("WORKER_HEARTBEAT_SECONDS", 15.0)
        self.WORKER_STALE_SECONDS = env_float("WORKER_STALE_SECONDS", 60.0)

        self.API_TITLE = "scanner"
        self.API_VERSION = "v1"
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.OPENAPI_SWAGGER_UI_PATH = "/docs"
        self.OPENAPI_SWAGGER_UI_URL = env("SWAGGER_UI_URL", "https://cdn.jsdelivr.net/npm/swagger-ui-dist/")
        self.API_SPEC_OPTIONS = {
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    # Swagger UI's "Authorize" signs in with a username and password through this.
                    "oauth2": {
                        "type": "oauth2",
                        "flows": {"password": {"tokenUrl": "/api/auth/token", "scopes": {}}},
                    },
                }
            },
            "security": [{"bearerAuth": []}, {"oauth2": []}],
        }
        self.JSON_SORT_KEYS = False
        self.LOG_LEVEL = env("LOG_LEVEL", "INFO")
        # How many proxies in front of the web process to believe about the client's address
        # (X-Forwarded-For) and scheme: 1 behind a Heroku-style router. Left at 0 when clients reach
        # gunicorn directly, since anyone could then forge the header to dodge the per-address lockout.
        self.TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)


class ProductionConfig(Config):
    def __init__(self) -> None:
        super().__init__()
        # JWT_SECRET_KEY signs every token (HS256): a short one set on its own is as weak as a
        # short SECRET_KEY.
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(self, name)
            if value == DEFAULT_SECRET:
                raise RuntimeError(f"{name} must be set to a random value in production")
            if len(value) < 32:
                raise RuntimeError(f"{name} must be at least 32 characters in production")
        if not self.ENCRYPTION_KEYS:
            # A generated key would live on one machine's disk and die with it, and the stored
            # VirusTotal keys with it.
            raise RuntimeError("ENCRYPTION_KEYS must be set in production (Fernet keys, newest first)")
        try:
            keys = [Fernet(k.strip()) for k in self.ENCRYPTION_KEYS.split(",") if k.strip()]
        except ValueError:
            keys = []
        if not keys:
            # Refused at start, not at the first key a user stores; the message never echoes the value.
            raise RuntimeError("ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)")


class TestConfig(Config):
    """Everything comes from the environment the test harness sets, so a worker subprocess
    started with the same environment sees the same database, broker and emulator."""

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True


CONFIGS = {"development": Config, "production": ProductionConfig, "testing": TestConfig}


def load_config(name: str | None = None) -> Config:
    return CONFIGS[name or env("SCANNER_CONFIG", "development")]()

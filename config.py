"""Configuration, read from the environment only (and a `.env` file through python-dotenv).

With nothing set everything runs embedded: SQLite for data, kombu's SQLite transport for the
Celery broker, a file-system cache shared by the processes of one machine, blobs under
`instance/`, secrets generated once into `instance/`. `DATABASE_URL` and `REDIS_URL` switch to
PostgreSQL and Redis, `BLOB_STORE_URL` to an S3-compatible bucket; outside embedded mode the
secrets must be set and nothing starts without them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from dotenv import load_dotenv

load_dotenv()

BASE_DIR = Path(__file__).resolve().parent
# SHA-256 of secrets that were ever published (once shipped as defaults): anyone can sign a token
# with them, so they are refused wherever they are set.
PUBLIC_SECRETS_SHA256 = frozenset({"bc586500685fe849de5194fa14effec739345b892b48f656221f22ed25cb38ef"})
MIN_SECRET_LENGTH = 32


class ConfigError(RuntimeError):
    """A setting the service cannot start without; the message is one line for the operator."""


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
        self.SQLALCHEMY_DATABASE_URI = _database_url(env("DATABASE_URL", f"sqlite:///{instance / 'scanner.db'}"))
        self._load_secrets(instance)
        self.JWT_ALGORITHM = "HS256"
        self.JWT_DECODE_ALGORITHMS = ["HS256"]
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 15 * 60))
        self.JWT_REFRESH_TOKEN_EXPIRES = timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 7 * 86400))
        self.JWT_TOKEN_LOCATION = ["headers"]

        # SQLite: a ping costs nothing. PostgreSQL: a connection's life is checked without a round
        # trip when it leaves the pool (scanner/db_liveness.py).
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": self.SQLALCHEMY_DATABASE_URI.startswith("sqlite")}
        if not self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            # Per process. A gevent web worker serves many requests at once, but an open stream
            # holds no connection while it waits (scanner/streams/sse.py): the pool is sized by the
            # requests in flight, and what PostgreSQL's max_connections leaves for every process. A
            # connection beyond the pool is opened for one request and closed after it (a new
            # PostgreSQL backend each time): the pool holds what a busy web process keeps using.
            self.SQLALCHEMY_ENGINE_OPTIONS |= {
                "pool_size": env_int("DB_POOL_SIZE", 15),
                "max_overflow": env_int("DB_MAX_OVERFLOW", 10),
                "pool_timeout": env_float("DB_POOL_TIMEOUT", 30.0),
            }
        self.REDIS_URL = env("REDIS_URL")

        broker = env("CELERY_BROKER_URL", self.REDIS_URL or f"sqla+sqlite:///{instance / 'broker.sqlite'}")
        # Redis hands a message not acknowledged within this long to another worker, and a countdown
        # is a message held unacknowledged until it is due: no countdown may be that long. Longer
        # waits (quota until midnight, a lookup's day) are left to the sweep (scanner/work.py).
        self.BROKER_VISIBILITY_TIMEOUT = env_int("BROKER_VISIBILITY_TIMEOUT", 3600)
        self.WORK_MAX_COUNTDOWN_SECONDS = min(
            env_float("WORK_MAX_COUNTDOWN_SECONDS", 600.0), self.BROKER_VISIBILITY_TIMEOUT / 2
        )
        visibility = {"visibility_timeout": self.BROKER_VISIBILITY_TIMEOUT}
        self.CELERY = {
            "broker_url": broker,
            "task_ignore_result": True,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_connection_retry_on_startup": True,
            # The worker waits out a broker outage of any length instead of exiting after 100 tries.
            "broker_connection_max_retries": None,
            # A task cut off from the broker runs on: its message comes back after the reconnect,
            # and the row's lease keeps the second run from repeating the work.
            "worker_cancel_long_running_tasks_on_connection_loss": False,
            "broker_transport_options": {"polling_interval": env_float("BROKER_POLL_SECONDS", 1.0), **visibility},
            "result_backend_transport_options": visibility,
            "beat_schedule_filename": str(instance / "celerybeat-schedule"),
            "timezone": "UTC",
        }

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
        # One budget per client (the user when signed in, else the address) shared by every route;
        # seed 002's X-RateLimit-*-Minute/-Hour headers report it (scanner/rate_limits.py).
        self.RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 60)
        self.RATE_LIMIT_PER_HOUR = env_int("RATE_LIMIT_PER_HOUR", 1000)
        # Uploads (files and bulk lists) on top of that budget, per client.
        self.UPLOAD_RATE_LIMIT = env("UPLOAD_RATE_LIMIT", "10 per minute;100 per hour")
        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        # Each web process remembers for this long that a token was not revoked and what its user
        # row held (scanner/auth/token_cache.py): a token revoked by another process is refused
        # within this delay, one revoked by this process at once. 0 checks on every request.
        self.AUTH_CACHE_SECONDS = env_float("AUTH_CACHE_SECONDS", 2.0)
        self.AUTH_CACHE_MAX_ENTRIES = env_int("AUTH_CACHE_MAX_ENTRIES", 10_000)
        # With Redis: how long a check stays good while no token is revoked and no user changes
        # anywhere (scanner/auth/generation.py).
        self.AUTH_CACHE_TRUST_SECONDS = env_float("AUTH_CACHE_TRUST_SECONDS", 60.0)

        self.BLOB_DIR = env("BLOB_DIR", str(instance / "blobs"))
        # s3://bucket/prefix: blobs in an S3-compatible bucket that web and workers on different
        # machines share (endpoint and credentials from the usual AWS_* variables).
        self.BLOB_STORE_URL = env("BLOB_STORE_URL")
        # Size of one part of a multipart upload to the bucket, the memory an upload holds.
        self.BLOB_PART_BYTES = env_int("BLOB_PART_BYTES", 8 * 1024 * 1024)
        self.MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 650 * 1024 * 1024)
        # Room for the multipart envelope around the largest allowed file.
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_BYTES + 1024 * 1024
        self.MAX_FORM_MEMORY_SIZE = 1024 * 1024
        # A JSON body is a few fields (an indicator, a note, a key): MAX_CONTENT_LENGTH is sized for
        # uploads, and a JSON body that large would be held and parsed whole in memory.
        self.MAX_JSON_BYTES = env_int("MAX_JSON_BYTES", 1024 * 1024)

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
        # A killed worker's scans are picked up again within lease + grace + sweep (35 s here).
        self.SCAN_SWEEP_SECONDS = env_float("SCAN_SWEEP_SECONDS", 10.0)
        # Steps begun in a row without ending well (errors of any kind, a worker killed mid-step).
        self.SCAN_MAX_ATTEMPTS = env_int("SCAN_MAX_ATTEMPTS", 8)
        # With no connection to VirusTotal at all, pauses between attempts stay this short, so a scan
        # or lookup fails within minutes (about 2.5 with the defaults) instead of ten.
        self.VT_UNREACHABLE_RETRY_MAX_SECONDS = env_float("VT_UNREACHABLE_RETRY_MAX_SECONDS", 30.0)
        # How long a task owns a scan before another may pick it up; renewed while a step runs.
        self.SCAN_LEASE_SECONDS = env_float("SCAN_LEASE_SECONDS", 15.0)
        # How late a step may be before the sweep queues it again (its message may just be queued).
        self.SCAN_STUCK_GRACE_SECONDS = env_float("SCAN_STUCK_GRACE_SECONDS", 10.0)
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
        # Server-Sent Events: an open stream costs a greenlet, not a request thread, but each holds
        # sockets and wakes now and then, so they are capped (per user, per web process, in total) and end.
        self.STREAM_MAX_PER_USER = env_int("STREAM_MAX_PER_USER", 3)
        self.STREAM_MAX_PER_PROCESS = env_int("STREAM_MAX_PER_PROCESS", 500)
        self.STREAM_MAX_TOTAL = env_int("STREAM_MAX_TOTAL", 2000)
        self.STREAM_MAX_SECONDS = env_float("STREAM_MAX_SECONDS", 600.0)
        self.STREAM_HEARTBEAT_SECONDS = env_float("STREAM_HEARTBEAT_SECONDS", 15.0)
        # Without Redis, streams re-read the database this often; with Redis, events wake them and the
        # database is re-read this often only as a safety net.
        self.STREAM_POLL_SECONDS = env_float("STREAM_POLL_SECONDS", 1.0)
        self.STREAM_RECHECK_SECONDS = env_float("STREAM_RECHECK_SECONDS", 10.0)
        # With Redis, each web process answers a scan's status and history pages from memory until
        # an event says they changed, and for at most this long (scanner/event_memory.py); 0 reads
        # them afresh each time.
        self.READ_MEMORY_SECONDS = env_float("READ_MEMORY_SECONDS", 2.0)
        self.READ_MEMORY_MAX_OBJECTS = env_int("READ_MEMORY_MAX_OBJECTS", 10_000)

        # Sign-in protection (scanner/auth/lockout.py, README "Sign-in protection"): failures per
        # account from one address; per account across addresses before delays start; per address
        # across accounts, high because many analysts may share one office address.
        self.LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
        self.LOGIN_ACCOUNT_MAX_FAILURES = env_int("LOGIN_ACCOUNT_MAX_FAILURES", 10)
        self.LOGIN_ACCOUNT_DELAY_SECONDS = env_int("LOGIN_ACCOUNT_DELAY_SECONDS", 30)
        self.LOGIN_MAX_FAILURES_PER_IP = env_int("LOGIN_MAX_FAILURES_PER_IP", 100)
        self.LOGIN_WINDOW_SECONDS = env_int("LOGIN_WINDOW_SECONDS", 15 * 60)
        # register, login, token; per address, on top of the shared budget
        self.AUTH_RATE_LIMIT = env("AUTH_RATE_LIMIT", "20 per minute;200 per hour")
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
        # json: one JSON object a line (what a log platform parses); text: readable on a console.
        self.LOG_FORMAT = env("LOG_FORMAT", "text")
        # /api/providers/metrics counts requests per hour in Redis (or the database) this long.
        self.METRICS_RETENTION_HOURS = env_int("METRICS_RETENTION_HOURS", 7 * 24)
        # /api/providers/performance calls the service unhealthy past these (percent of the machine,
        # bytes of this process's resident memory).
        self.PERF_SYSTEM_MEMORY_PERCENT = env_float("PERF_SYSTEM_MEMORY_PERCENT", 90.0)
        self.PERF_SYSTEM_CPU_PERCENT = env_float("PERF_SYSTEM_CPU_PERCENT", 90.0)
        self.PERF_PROCESS_RSS_BYTES = env_int("PERF_PROCESS_RSS_BYTES", 1024 * 1024 * 1024)
        # Each process stores what it counts (the shared Prometheus counters, scanner/metrics/, and
        # the request counts of /api/providers/metrics) at most this often, by one flusher: one
        # Redis round trip (or database transaction) per process and interval; 0 on every request.
        self.METRICS_FLUSH_SECONDS = env_float("METRICS_FLUSH_SECONDS", 1.0)
        # GET /metrics (Prometheus) answers a bearer token equal to METRICS_TOKEN, or these addresses.
        self.METRICS_TOKEN = env("METRICS_TOKEN")
        # "none": the token only (behind a proxy on the same machine every client looks like loopback).
        allowed = env("METRICS_ALLOWED_ADDRESSES", "127.0.0.1,::1")
        self.METRICS_ALLOWED_ADDRESSES = [] if allowed == "none" else [a.strip() for a in allowed.split(",")]
        # Audit events older than this are pruned by the scheduler.
        self.AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365)
        # How often beat prunes what is past its retention (audit events, request counts, sessions).
        self.PRUNE_INTERVAL_SECONDS = env_float("PRUNE_INTERVAL_SECONDS", 3600.0)
        # How many proxies in front of the web process to believe about the client's address
        # (X-Forwarded-For) and scheme: 1 behind a Heroku-style router. Left at 0 when clients reach
        # gunicorn directly, since anyone could then forge the header to dodge the per-address lockout.
        self.TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)

    def generates_secrets(self) -> bool:
        """Whether missing secrets may be generated into the instance folder.

        A generated secret lives on one machine's disk: safe only where the data it protects does
        too (a SQLite database). With a shared database every machine would make its own, so the
        tokens one web process signs would be refused by the next and workers could not decrypt
        the stored VirusTotal keys; and a new disk (a restart on a Heroku-style platform) would
        lose every stored key.
        """
        return self.SQLALCHEMY_DATABASE_URI.startswith("sqlite")

    def _load_secrets(self, instance: Path) -> None:
        generate = self.generates_secrets()
        secret_key = env("SECRET_KEY")
        if secret_key is None and generate:
            secret_key = instance_secret(instance, "secret.key", lambda: secrets.token_urlsafe(48))
        keys = env("ENCRYPTION_KEYS")  # comma-separated Fernet keys, newest first
        if keys is None and generate:
            keys = instance_secret(instance, "encryption.key", lambda: Fernet.generate_key().decode())
        self.SECRET_KEY, self.ENCRYPTION_KEYS = secret_key, keys
        # JWT_SECRET_KEY signs every token (HS256): one set on its own is checked like SECRET_KEY.
        self.JWT_SECRET_KEY = env("JWT_SECRET_KEY", secret_key)
        missing = [name for name in ("SECRET_KEY", "ENCRYPTION_KEYS") if getattr(self, name) is None]
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)} (secrets are generated only in embedded mode, on SQLite)")
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            value = getattr(self, name)
            if value is None:
                continue
            if hashlib.sha256(value.encode()).hexdigest() in PUBLIC_SECRETS_SHA256:
                problems.append(f"{name} is a published value anyone can sign tokens with")
            elif len(value) < MIN_SECRET_LENGTH:
                problems.append(f"{name} must be at least {MIN_SECRET_LENGTH} characters")
        if keys is not None and not _fernet_keys(keys):
            # Refused at start, not at the first key a user stores; the message never echoes the value.
            problems.append("ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)")
        if problems:
            raise ConfigError(f"scanner cannot start: {'; '.join(problems)}; see README, Deploying")


def _fernet_keys(value: str) -> list[Fernet]:
    try:
        return [Fernet(k.strip()) for k in value.split(",") if k.strip()]
    except ValueError:
        return []


def instance_secret(instance: Path, name: str, make: Callable[[], str]) -> str:
    """The secret in `instance/name`, made once and readable by the owner only."""
    path = instance / name
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written to a private temporary file and linked into place: link never replaces an existing
    # file, so when two processes start at once both end up with the one secret that won.
    fd, tmp = tempfile.mkstemp(dir=instance, prefix=f".{name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


class ProductionConfig(Config):
    """`SCANNER_CONFIG=production`: the secrets must come from the environment even on SQLite."""

    def __init__(self) -> None:
        super().__init__()
        self.LOG_FORMAT = env("LOG_FORMAT", "json")

    def generates_secrets(self) -> bool:
        return False


class TestConfig(Config):
    """Everything comes from the environment the test harness sets, so a worker subprocess
    started with the same environment sees the same database, broker and emulator."""

    def __init__(self) -> None:
        super().__init__()
        self.TESTING = True


CONFIGS = {"development": Config, "production": ProductionConfig, "testing": TestConfig}


def load_config(name: str | None = None) -> Config:
    return CONFIGS[name or env("SCANNER_CONFIG", "development")]()


def load_config_or_exit(name: str | None = None) -> Config:
    """`load_config` for the processes an operator starts (web, worker, beat, `flask db upgrade`):
    a setting they cannot start without ends the process with one line on stderr, not a traceback."""
    try:
        return load_config(name)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None

"""gunicorn settings. gevent workers: an open event stream or a slow upload waits as a greenlet
of a few KB, not as a thread, so streams never take request slots from the rest of the API.
psycopg 3 (from 3.1.14) and redis-py wait through the sockets and selectors that gevent patches,
so database and Redis calls yield too; CPU-heavy work that would stall a worker (argon2 password
hashing) runs on gevent's pool of real threads (`scanner/cooperative.py`)."""

import os
import shutil
from pathlib import Path

worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
if worker_class == "gevent":
    # Before anything imports sockets, ssl or threads: the JSON log formatter below imports the app's
    # modules into the arbiter, and a module imported before the patch keeps the blocking calls
    # (gevent's worker would patch only after the fork).
    from gevent import monkey

    monkey.patch_all()
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Open connections per worker (streams included); STREAM_MAX_PER_PROCESS stays below it.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))  # gthread only
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# prometheus-client's multiprocess mode: each worker process writes its counters to files here and a
# scrape of /metrics adds them up. Set before the app (and prometheus_client) is imported in a worker;
# emptied when gunicorn starts (counters restart at zero, which Prometheus expects of a restart).
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    str(Path(os.environ.get("INSTANCE_DIR") or Path(__file__).resolve().parent / "instance") / "prometheus"),
)


def on_starting(server) -> None:
    # The workers would each fail to load the app, and a worker that exits is replaced forever:
    # the master checks the settings once, before it forks, and stops with one line.
    from config import load_config_or_exit

    load_config_or_exit()
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], mode=0o700, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# The app writes one access line per request itself, with its request id, route template, user and
# duration (scanner/system/middleware.py); gunicorn's own lines share the app's format.
accesslog = None
errorlog = "-"
if (os.environ.get("LOG_FORMAT") or ("json" if os.environ.get("SCANNER_CONFIG") == "production" else "text")) == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "scanner.logs.JsonFormatter"}},
        # Named as scanner.logs names its handler, so the app's setup replaces it rather than doubling lines.
        "handlers": {"scanner": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["scanner"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["scanner"], "propagate": False}},
    }
# Large uploads are streamed to disk by the app; never buffer a whole request body in memory here.
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app is imported once, then the workers fork from it: on a small machine, starting beside a
# Celery worker and beat that import it too, the first answer comes a few seconds sooner.
# Not under gevent: threads the app starts while loading (timers) do not survive a fork into a
# gevent worker.
preload_app = worker_class != "gevent"


def when_ready(server) -> None:
    """Say where to start, once the app is loaded and the socket listens."""
    for host, port in (listener.getsockname()[:2] for listener in server.LISTENERS):
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        server.log.info("Ready: API documentation (Swagger UI) at http://%s:%s/api/docs", shown, port)

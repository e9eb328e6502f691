"""gunicorn settings. gthread workers: threads keep long-lived event streams and slow uploads
from tying up a whole process each."""

import os
import shutil
from pathlib import Path

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
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


def on_starting(server):
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
preload_app = True


def when_ready(server) -> None:
    """Say where to start, once the app is loaded and the socket listens."""
    for host, port in (listener.getsockname()[:2] for listener in server.LISTENERS):
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        server.log.info("Ready: API documentation (Swagger UI) at http://%s:%s/api/docs", shown, port)

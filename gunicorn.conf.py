"""gunicorn settings. gthread workers: threads keep long-lived event streams and slow uploads
from tying up a whole process each."""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
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

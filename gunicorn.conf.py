"""gunicorn settings. gthread workers: threads keep long-lived event streams and slow uploads
from tying up a whole process each."""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# Large uploads are streamed to disk by the app; never buffer a whole request body in memory here.
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server) -> None:
    # The workers would each fail to load the app, and a worker that exits is replaced forever:
    # the master checks the settings once, before it forks, and stops with one line.
    from config import load_config_or_exit

    load_config_or_exit()

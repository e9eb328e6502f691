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
# The app is imported once, then the workers fork from it: on a small machine, starting beside a
# Celery worker and beat that import it too, the first answer comes a few seconds sooner.
preload_app = True


def when_ready(server) -> None:
    """Say where to start, once the app is loaded and the socket listens."""
    for host, port in (listener.getsockname()[:2] for listener in server.LISTENERS):
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        server.log.info("Ready: API documentation (Swagger UI) at http://%s:%s/api/docs", shown, port)

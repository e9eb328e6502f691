"""gunicorn settings. gevent workers: an open event stream or a slow upload waits as a greenlet
of a few KB, not as a thread, so streams never take request slots from the rest of the API.
psycopg 3 (from 3.1.14) and redis-py wait through the sockets and selectors that gevent patches,
so database and Redis calls yield too; CPU-heavy work that would stall a worker (argon2 password
hashing) runs on gevent's pool of real threads (`scanner/cooperative.py`)."""

import os

worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Open connections per worker (streams included); STREAM_MAX_PER_PROCESS stays below it.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))  # gthread only
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# Large uploads are streamed to disk by the app; never buffer a whole request body in memory here.
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

"""Test harness: a real app on a real database, a real VirusTotal emulator over HTTP, and real
Celery workers in subprocesses for the integration tests.

SQLite by default; PostgreSQL when TEST_DATABASE_URL is set; Redis (cache, limiter, broker)
when TEST_REDIS_URL is set.
"""

pytest_plugins = [
    "tests.fixtures.vt",
    "tests.fixtures.app",
    "tests.fixtures.worker",
    "tests.fixtures.users",
    "tests.fixtures.redis_server",
    "tests.fixtures.s3",
    "tests.fixtures.web",
]

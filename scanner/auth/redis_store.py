"""Redis for the auth feature: a fast path only, never the sole keeper of a decision.

Every caller has a database fallback. When Redis fails, this process stops asking it for a few
seconds, so an outage costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from flask import current_app

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER_FAILURE_SECONDS = 5.0
_clients: dict[str, redis.Redis] = {}
_down_until: dict[str, float] = {}
_lock = threading.Lock()


class RedisUnavailable(Exception):
    """No Redis configured, or it failed just now: use the database."""


def key(*parts: str) -> str:
    return current_app.config["CACHE_KEY_PREFIX"] + "auth:" + ":".join(parts)


def _client(url: str) -> redis.Redis:
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            _clients[url] = client
        return client


def call(operation: Callable[[redis.Redis], T]) -> T:
    """Run `operation` on Redis or raise `RedisUnavailable`."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        raise RedisUnavailable("no REDIS_URL")
    if time.monotonic() < _down_until.get(url, 0.0):
        raise RedisUnavailable("Redis failed recently")
    try:
        return operation(_client(url))
    except redis.RedisError as exc:
        _down_until[url] = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        log.warning("Redis unavailable for auth, using the database for %.0fs: %s", RETRY_AFTER_FAILURE_SECONDS, exc)
        raise RedisUnavailable(str(exc)) from exc

"""Redis for the auth feature: a fast path only, never the sole keeper of a decision.

Every caller has a database fallback. When Redis fails, this process stops asking it for a few
seconds, so an outage costs one timeout, not one per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
from flask import current_app

from ..redis_backoff import Backoff, client

T = TypeVar("T")

_backoff = Backoff("auth Redis (using the database)")


class RedisUnavailable(Exception):
    """No Redis configured, or it failed just now: use the database."""


def key(*parts: str) -> str:
    return current_app.config["CACHE_KEY_PREFIX"] + "auth:" + ":".join(parts)


def call(operation: Callable[[redis.Redis], T]) -> T:
    """Run `operation` on Redis or raise `RedisUnavailable`."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        raise RedisUnavailable("no REDIS_URL")
    if not _backoff.available(url):
        raise RedisUnavailable("Redis failed recently")
    try:
        return operation(client(url, socket_connect_timeout=0.5, socket_timeout=0.5))
    except redis.RedisError as exc:
        _backoff.failed("call", exc, url)
        raise RedisUnavailable(str(exc)) from exc

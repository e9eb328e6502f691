"""The lookup cache (Flask-Caching: Redis in production) as an optimisation that can never fail a
lookup: Flask-Caching's RedisCache raises when Redis is down, so every call here swallows the
error, logs it, and the caller carries on from the database. After a failure this process skips
the cache for a few seconds instead of paying a failed round trip (or a timeout) per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from ..extensions import cache

log = logging.getLogger(__name__)

BACKOFF_SECONDS = 5.0
_skip_until = 0.0


def _available() -> bool:
    return time.monotonic() >= _skip_until


def _failed(operation: str, error: Exception) -> None:
    global _skip_until
    _skip_until = time.monotonic() + BACKOFF_SECONDS
    log.warning("lookup cache %s failed, using the database for %.0fs: %s", operation, BACKOFF_SECONDS, error)


def get_many(keys: list[str]) -> dict[str, Any]:
    """The cached values of `keys` that are there; {} when the cache is unavailable."""
    if not keys or not _available():
        return {}
    try:
        values = cache.get_many(*keys)
    except Exception as error:
        _failed("read", error)
        return {}
    return {key: value for key, value in zip(keys, values, strict=True) if value is not None}


def get(key: str) -> Any:
    return get_many([key]).get(key)


def put_many(values: Mapping[str, Any], timeout: int) -> None:
    if not values or timeout <= 0 or not _available():
        return
    try:
        cache.set_many(dict(values), timeout=timeout)
    except Exception as error:
        _failed("write", error)


def put(key: str, value: Any, timeout: int) -> None:
    put_many({key: value}, timeout)

"""The lookup cache (Flask-Caching: Redis in production) as an optimisation that can never fail a
lookup: Flask-Caching's RedisCache raises when Redis is down, so every call here swallows the
error, logs it, and the caller carries on from the database. After a failure this process skips
the cache for a few seconds instead of paying a failed round trip (or a timeout) per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..extensions import cache
from ..metrics import count_cache
from ..redis_backoff import Backoff

_backoff = Backoff("lookup cache (using the database)")
_available, _failed = _backoff.available, _backoff.failed


def get_many(keys: list[str]) -> dict[str, Any]:
    """The cached values of `keys` that are there; {} when the cache is unavailable."""
    if not keys or not _available():
        return {}
    try:
        values = cache.get_many(*keys)
    except Exception as error:
        _failed("read", error)
        return {}
    found = {key: value for key, value in zip(keys, values, strict=True) if value is not None}
    count_cache("lookups", hits=len(found), misses=len(keys) - len(found))
    return found


def put_many(values: Mapping[str, Any], timeout: int) -> None:
    if not values or timeout <= 0 or not _available():
        return
    try:
        cache.set_many(dict(values), timeout=timeout)
    except Exception as error:
        _failed("write", error)


def put(key: str, value: Any, timeout: int) -> None:
    put_many({key: value}, timeout)

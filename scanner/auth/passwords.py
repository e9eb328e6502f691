"""argon2id password hashes, with the cost taken from the configuration."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from ..cooperative import run_cpu_bound


@functools.cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def hasher() -> PasswordHasher:
    cfg = current_app.config
    return _hasher(cfg["PASSWORD_HASH_TIME_COST"], cfg["PASSWORD_HASH_MEMORY_KIB"], cfg["PASSWORD_HASH_PARALLELISM"])


@functools.cache
def _decoy(h: PasswordHasher) -> str:
    return h.hash("decoy password that no account has")


def hash_password(password: str) -> str:
    return run_cpu_bound(hasher().hash, password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches. With no account (`None`) a decoy hash is checked anyway, so
    an unknown username takes as long to refuse as a wrong password."""
    h = hasher()
    try:
        return run_cpu_bound(h.verify, stored_hash or _decoy(h), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True

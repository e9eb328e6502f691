"""A short memory, per web process, of what the last check of a token found.

A token string whose signature was verified is remembered until it expires (verifying it again
would give the same answer). Knowing it was not revoked and loading its user costs
a Redis round trip and a database query. For `AUTH_CACHE_SECONDS` (2 s by default) after a check
this process takes the answer as still true: a token revoked by another process is refused within
that delay; one revoked by this process (logout, refresh-token reuse, password change) at once,
because the revocation is written here as it commits. A user row changed here (role, password,
deletion) is forgotten as it commits too. Bounded to `AUTH_CACHE_MAX_ENTRIES` tokens and users,
the least recently used leaving first.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from . import generation
from .models import User

_CHANGED_USERS = "auth_token_cache_changed_users"


class _Lru:
    def __init__(self) -> None:
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, now: float) -> Any | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] <= now:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: Any, value: Any, until: float, limit: int) -> None:
        with self._lock:
            self._items[key] = (until, value)
            self._items.move_to_end(key)
            while len(self._items) > limit:
                self._items.popitem(last=False)

    def drop(self, key: Any) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_good = _Lru()  # (jti, family, user) -> (checked at, generation): checked and not revoked
_revoked = _Lru()  # "jti:<id>" / "family:<id>" revoked by this process, until the token could expire
_users = _Lru()  # user id -> (the row, detached, read at, generation)
_decoded = _Lru()  # encoded token -> (header, claims), until the token expires


def _seconds() -> float:
    return float(current_app.config.get("AUTH_CACHE_SECONDS", 0)) if has_app_context() else 0.0


def _limit() -> int:
    return int(current_app.config.get("AUTH_CACHE_MAX_ENTRIES", 10_000)) if has_app_context() else 10_000


def revoked_here(payload: dict) -> bool:
    now = time.monotonic()
    return bool(_revoked.get(f"jti:{payload['jti']}", now) or _revoked.get(f"family:{payload.get('family')}", now))


def _token(payload: dict) -> tuple:
    # Every claim the check depends on: a token re-signed with another family or subject but the
    # same jti is another token.
    return payload["jti"], payload.get("family"), payload.get("sub"), payload.get("type")


def _trusted(checked_at: float, checked_in: int | None, now_in: int | None) -> bool:
    """An answer stands while it is younger than AUTH_CACHE_SECONDS, or while the generation it
    was checked in is still the current one (scanner/auth/generation.py)."""
    return time.monotonic() - checked_at < _seconds() or (checked_in is not None and checked_in == now_in)


def _until() -> float:
    return time.monotonic() + max(_seconds(), float(current_app.config.get("AUTH_CACHE_TRUST_SECONDS", 0)))


def known_good(payload: dict, now_in: int | None) -> bool:
    """`now_in`: the current generation."""
    if _seconds() <= 0:
        return False
    found = _good.get(_token(payload), time.monotonic())
    return found is not None and _trusted(*found, now_in)


def remember_good(payload: dict, checked_in: int | None) -> None:
    """`checked_in`: the generation read before the check began."""
    if _seconds() > 0:
        _good.put(_token(payload), (time.monotonic(), checked_in), _until(), _limit())


def remember_revoked(kind: str, value: str, seconds_left: float) -> None:
    """Called as a revocation commits; kept however short the cache delay is."""
    if seconds_left > 0:
        _revoked.put(f"{kind}:{value}", True, time.monotonic() + seconds_left, _limit())


def decoded(encoded: str) -> tuple[dict, dict] | None:
    return _decoded.get(encoded, time.monotonic())


def remember_decoded(encoded: str, found: tuple[dict, dict], expires: float | None) -> None:
    if expires is not None:  # a token that never expires is verified each time, never remembered
        _decoded.put(encoded, found, time.monotonic() + (expires - time.time()), _limit())


_USER_MAPPER = inspect(User)


def _detached(values: dict[str, Any]) -> User:
    # Built as a query would load it: User(**values) cost a signed-in request more than its own
    # database read.
    user = _USER_MAPPER.class_manager.new_instance()
    user.__dict__.update(values)
    make_transient_to_detached(user)
    return user


def cached_user(user_id: uuid.UUID, now_in: int | None) -> User | None:
    """The user as this process last read it, outside any session and shared by every request
    that asks meanwhile: read it, never change it (`attach` gives a request its own, in its
    session). None if unknown or no longer trusted (`now_in`: the current generation)."""
    if _seconds() <= 0:
        return None
    found = _users.get(user_id, time.monotonic())
    if found is None or not _trusted(*found[1:], now_in):
        return None
    return found[0]


def attach(session: Session, user: User) -> User:
    """The request's own copy of a user from `cached_user`, persistent in `session` without a
    query: the one the session already holds, if it loaded the row meanwhile (and a fresh read of
    one whose values a commit expired before its session closed)."""
    state = inspect(user)
    attached = session.identity_map.get(state.key)
    if attached is not None:
        return attached
    values = state.dict
    if any(attr.key not in values for attr in _USER_MAPPER.column_attrs):
        return session.get(User, state.identity[0])
    own = _detached({attr.key: values[attr.key] for attr in _USER_MAPPER.column_attrs})
    session.add(own)
    return own


def remember_user(user: User, read_in: int | None) -> None:
    """`read_in`: the generation read before the row was."""
    if _seconds() > 0:
        values = {attr.key: getattr(user, attr.key) for attr in _USER_MAPPER.column_attrs}
        _users.put(user.id, (_detached(values), time.monotonic(), read_in), _until(), _limit())


def clear() -> None:
    for lru in (_good, _revoked, _users, _decoded):
        lru.clear()


@event.listens_for(Session, "after_flush")
def _note_changed_users(session: Session, flush_context) -> None:
    changed = {obj.id for obj in (*session.dirty, *session.deleted) if isinstance(obj, User)}
    if changed:
        session.info.setdefault(_CHANGED_USERS, set()).update(changed)


@event.listens_for(Session, "after_commit")
def _forget_changed_users(session: Session) -> None:
    changed = session.info.pop(_CHANGED_USERS, ())
    for user_id in changed:
        _users.drop(user_id)
    if changed:
        generation.changed()


@event.listens_for(Session, "after_rollback")
def _keep_users(session: Session) -> None:
    session.info.pop(_CHANGED_USERS, None)

"""Which of a user's keys a VirusTotal call uses, and what VirusTotal's answer means for the key.
Every call goes through `virustotal.gateway`'s quota gate.

- 429 (quota exceeded): the key's budget is blocked until its window resets (the minute, or
  00:00 UTC once the day's count is spent or a minute's pause did not help) and the work moves
  to the user's next active key; with none left, QuotaExhausted says when to retry.
- 401 (key rejected): the key is deactivated, with the reason in `last_error`, and the work
  moves on.
- any other answer below 500 (a 404 too: VirusTotal took the key): `last_used_at`, and
  `is_verified` for a key stored while VirusTotal could not check it.

The key rows are read and kept as plain values before the call, because the gate ends the
session's transaction before each request (callers commit their own writes first). A key paused
or deactivated is written at once, in a short transaction of its own, so that it sticks even when
the caller rolls its work back. A key's use is written with the caller's next commit (a scan's
verdict, a lookup's row), not in a commit of its own; should the caller's transaction end
without one, it is written apart then.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value

from ..auth.models import User
from ..db_types import utcnow
from ..errors import AppError, NoActiveApiKey, NotFound, QuotaExhausted, ValidationFailed
from ..extensions import db
from ..virustotal import quota
from ..virustotal.client import VirusTotalClient
from ..virustotal.errors import InvalidKeyError, RateLimitedError, VirusTotalError
from ..virustotal.gateway import KeyBusy, gated_client
from . import crypto
from .models import ApiKey

__all__ = ["KeyChoice", "call", "call_with_key", "choose", "pick_key"]

log = logging.getLogger(__name__)
T = TypeVar("T")
UNDECRYPTABLE = "The stored key cannot be decrypted with the configured encryption keys"
# How stale `last_used_at` may be: a key used more often is written at most this often.
TOUCH_EVERY = timedelta(seconds=1)
# When this process last wrote each key's `last_used_at`.
_touched: dict[uuid.UUID, datetime] = {}
# In a session's `info`: the uses of keys waiting for its commit, by key id (`_record_use`).
_USES = "api_key_uses"


@dataclass(frozen=True)
class _Key:
    """What a call needs of a key row, read before the transaction ends (the commit that ends
    it expires the row, and reading it again would open another)."""

    row: ApiKey
    id: uuid.UUID
    last4: str
    ciphertext: str
    per_day: int
    budget: quota.Budget
    # As read: whether an answer from VirusTotal would change anything worth a write (`_touch`).
    last_used_at: datetime | None
    settled: bool

    @classmethod
    def of(cls, row: ApiKey) -> _Key:
        settled = bool(row.is_verified) and row.last_error is None
        return cls(row, row.id, row.last4, row.ciphertext, row.per_day, quota.Budget.of(row), row.last_used_at, settled)


@dataclass(frozen=True)
class KeyChoice:
    """The keys a call may use, read as plain values: the caller may commit (ending the
    transaction that read them) and then call VirusTotal with no further read of the keys."""

    keys: tuple[_Key, ...]
    named: bool  # the caller named the key: it is never swapped for another

    def call(self, fn: Callable[[VirusTotalClient], T]) -> T:
        if self.named:
            return _call_named(self.keys[0], fn)
        # Among several keys the least recently used goes first: each use must be written.
        return _call_first_free(self.keys, fn, exact_use=len(self.keys) > 1)


def pick_key(user: User, key_id: uuid.UUID | None = None) -> ApiKey:
    """The key a call would use: the named one, or the user's active key whose budget frees
    soonest. Raises NotFound, ValidationFailed("API key is not active") or NoActiveApiKey."""
    if key_id is not None:
        return _named_key(user.id, key_id)
    keys = _ranked_keys(user.id)
    if not keys:
        raise NoActiveApiKey()
    return keys[0]


def call_with_key(key: ApiKey, fn: Callable[[VirusTotalClient], T]) -> T:
    """Run `fn` with this key only. A 429 becomes QuotaExhausted (with when to retry); a 401
    deactivates the key and is raised as the client's InvalidKeyError."""
    return _call_named(_Key.of(key), fn)


def _call_named(ref: _Key, fn: Callable[[VirusTotalClient], T]) -> T:
    try:
        return _run(ref, fn)
    except RateLimitedError as exc:
        raise QuotaExhausted("This API key's VirusTotal quota is used up", retry_after=_wait_of(ref)) from exc
    except crypto.InvalidToken:
        raise AppError(UNDECRYPTABLE, code="KEY_DECRYPTION_FAILED") from None


def choose(user_id: uuid.UUID, key_id: uuid.UUID | None = None) -> KeyChoice:
    """Read the keys a call for this user would use (the named one, or every active one, ranked);
    raises as `pick_key` does for a named key that cannot be used."""
    if key_id is not None:
        return KeyChoice((_Key.of(_named_key(user_id, key_id)),), named=True)
    return KeyChoice(tuple(_Key.of(row) for row in _ranked_keys(user_id)), named=False)


def call(user: User, fn: Callable[[VirusTotalClient], T], key_id: uuid.UUID | None = None) -> T:
    """Run `fn` with one of the user's keys, moving to the next active key when one is out of
    budget or rejected. A named key is never swapped for another."""
    return choose(user.id, key_id).call(fn)


def _call_first_free(keys: tuple[_Key, ...], fn: Callable[[VirusTotalClient], T], exact_use: bool) -> T:
    waits: list[float] = []
    for key in keys:
        try:
            return _run(key, fn, exact_use)
        except KeyBusy as exc:
            waits.append(exc.retry_after)
        except RateLimitedError:
            waits.append(_wait_of(key))
        except (InvalidKeyError, crypto.InvalidToken):
            continue
    if waits:
        raise QuotaExhausted("No API key has VirusTotal quota left", retry_after=min(waits))
    if keys:
        raise NoActiveApiKey("No usable API key left: each active key failed (see its last_error)")
    raise NoActiveApiKey()


def _named_key(user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    with db.session.no_autoflush:
        key = db.session.get(ApiKey, key_id, populate_existing=True)
    if key is None or key.user_id != user_id:
        raise NotFound("API key not found")
    if not key.is_active:
        raise ValidationFailed("API key is not active")
    return key


def _ranked_keys(user_id: uuid.UUID) -> list[ApiKey]:
    """Active keys, those with budget now (or soonest) first, the least recently used first
    among equals so the load spreads."""
    # No autoflush: flushing the caller's pending rows here would take SQLite's write lock.
    with db.session.no_autoflush:
        keys = db.session.scalars(
            select(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.is_active.is_(True))
            .execution_options(populate_existing=True)
        ).all()
    try:
        waits = {key.id: quota.wait_time(key) for key in keys}
    except quota.QuotaStoreUnavailable:
        # Ranked by use alone: the gate refuses the call itself until the store is back, and a
        # route that only needs to know a key exists (an upload, a bulk job) still answers.
        waits = dict.fromkeys((key.id for key in keys), 0.0)
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(keys, key=lambda k: (waits[k.id], k.last_used_at or never))


def _run(key: _Key, fn: Callable[[VirusTotalClient], T], exact_use: bool = False) -> T:
    try:
        value = crypto.decrypt(key.ciphertext)
    except crypto.InvalidToken:
        log.error("API key %s cannot be decrypted with the configured ENCRYPTION_KEYS", key.id)
        _save(key, last_error=UNDECRYPTABLE)
        raise
    try:
        result = fn(gated_client(value, key.budget))
    except InvalidKeyError as exc:
        log.warning("VirusTotal rejected API key %s (…%s): deactivated", key.id, key.last4)
        _save(key, edited=True, is_active=False, last_error=f"VirusTotal rejected the key ({exc.code}); deactivated")
        raise
    except RateLimitedError:
        _exhaust(key)
        raise
    except VirusTotalError as exc:
        if exc.http_status is not None and exc.http_status < 500:  # VirusTotal took the key, then refused
            _touch(key)
        raise
    _touch(key, exact_use)
    return result


def _exhaust(key: _Key) -> None:
    scope = _scope_of_429(key)
    until = quota.mark_exhausted(key.budget, scope)
    log.warning("VirusTotal quota of API key %s (…%s) exceeded: paused until %s", key.id, key.last4, until)
    _save(
        key, exhausted_until=until, last_error=f"VirusTotal quota exceeded; paused until {until:%Y-%m-%d %H:%M:%S} UTC"
    )


def _scope_of_429(key: _Key) -> quota.Scope:
    """Which window to wait for: VirusTotal's 429 does not say."""
    if quota.usage(key.budget)["day_used"] >= key.per_day:
        return "day"
    # Refused again within a window of the last pause ending: the minute is not the problem, the
    # daily (or monthly) allowance is, whoever else spent it.
    cfg = current_app.config
    span = timedelta(seconds=cfg["VT_QUOTA_MINUTE_SECONDS"] + cfg["VT_QUOTA_MARGIN_SECONDS"])
    with db.engine.connect() as conn:
        last_pause = conn.scalar(select(ApiKey.exhausted_until).where(ApiKey.id == key.id))
    now = utcnow()
    if last_pause is not None and now - span < last_pause <= now:
        return "day"
    return "minute"


def _wait_of(key: _Key) -> float:
    return max(quota.wait_time(key.budget), 1e-3)


def _touch(key: _Key, exact_use: bool = False) -> None:
    # An answer proves the key works: a key stored unverified (VirusTotal was down) is verified.
    now = utcnow()
    # The later of the use as read and this process's own last write: a key read once for two
    # calls (a scan's lookup and upload) is not written twice.
    used = max(filter(None, (key.last_used_at, _touched.get(key.id))), default=None)
    recent = used is not None and now - used < TOUCH_EVERY
    if key.settled and recent and not exact_use:
        # A busy key answers many times a second: a write for each would cost more than the
        # call, and a `last_used_at` a second old says the same (unless it ranks the next call).
        return
    _record_use(key, now)


def _record_use(key: _Key, now: datetime) -> None:
    """Have the key's use written with the caller's next commit: the caller commits what the
    answer brought (a verdict, a lookup) anyway, and a transaction of its own would be one commit
    more for every scan. A transaction is begun if none is, so that its end is seen
    (`_write_uses_apart`) even when nothing else is written in it."""
    session = db.session()
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_USES, {})[key.id] = (key, _use_values(now))


def _use_values(now: datetime) -> dict[str, Any]:
    return {"last_used_at": now, "is_verified": True, "last_error": None}


@event.listens_for(Session, "before_commit")
def _write_uses(session: Session) -> None:
    """In the caller's transaction, once its own rows are flushed: a key row many workers share is
    locked for the commit alone. Should this write fail, the commit fails with it, and the use is
    written apart (`_write_uses_apart`)."""
    uses = session.info.get(_USES)
    if not uses or session.get_nested_transaction() is not None:  # a savepoint's release is no commit
        return
    session.flush()
    for key, values in sorted(uses.values(), key=lambda use: use[0].id):
        session.execute(_update(key, values))


@event.listens_for(Session, "after_commit")
def _uses_written(session: Session) -> None:
    # Every commit of every session comes here: the common case, no use, is one dict lookup.
    if _USES not in session.info or session.get_nested_transaction() is not None:
        return
    for key, values in session.info.pop(_USES).values():
        _show(key, values)
        _remember_use(key, values)


@event.listens_for(Session, "after_transaction_end")
def _write_uses_apart(session: Session, transaction: SessionTransaction) -> None:
    """The caller's transaction ended without a commit (rolled back, its session closed, or its
    commit failed): its uses are written in a transaction of their own. VirusTotal has answered
    (a file may have been sent), so a failed write of this bookkeeping is logged, not raised; the
    next use writes it."""
    if transaction.parent is not None or _USES not in session.info:
        return
    for key, values in session.info.pop(_USES).values():
        try:
            _write_apart(key, values)
        except Exception as exc:  # a hook of the session's rollback or close: nothing may escape it
            log.warning("API key %s used, but its last use could not be recorded: %s", key.id, exc)
            continue
        _remember_use(key, values)


def _save(key: _Key, *, edited: bool = False, **values: Any) -> None:
    """Write key state in its own transaction and show it on the caller's object as committed,
    so the caller's rollback cannot undo it and its commit does not write it again.

    `updated_at` moves only for an `edited` key (one whose settings changed, as on deactivation):
    using a key is not editing it.
    """
    quota.ensure_no_pending_sqlite_writes()
    if edited:
        values["updated_at"] = utcnow()
    _write_apart(key, values)


def _write_apart(key: _Key, values: dict[str, Any]) -> None:
    with db.engine.begin() as conn:
        conn.execute(_update(key, values))
    _show(key, values)


def _update(key: _Key, values: dict[str, Any]) -> Any:
    # Naming updated_at, even as itself, stops the column's onupdate from firing.
    return update(ApiKey).where(ApiKey.id == key.id).values({"updated_at": ApiKey.updated_at, **values})


def _show(key: _Key, values: dict[str, Any]) -> None:
    """Written: shown on the caller's object as committed, so its commit does not write it again."""
    for name, value in values.items():
        set_committed_value(key.row, name, value)


def _remember_use(key: _Key, values: dict[str, Any]) -> None:
    """The use is committed: `_touch` need not write it again for a second."""
    if len(_touched) > 1024:  # a bound, not a cache worth keeping: the rows say the same
        _touched.clear()
    _touched[key.id] = values["last_used_at"]

"""The rules for a user's VirusTotal keys: ownership, duplicates, validation, encryption.

Checking a key with VirusTotal costs one request of that key's quota, so the check passes the
same quota gate as any other call (the budget is named by the key's fingerprint, so it exists
before the key is stored). When the budget has no token, or VirusTotal cannot be reached,
the key is stored unverified with the reason in `last_error`; its first successful use verifies it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..auth.models import User
from ..db_types import utcnow
from ..errors import Conflict, NotFound, ProviderError, QuotaExhausted, ValidationFailed
from ..extensions import db
from ..request_args import parse_uuid
from ..virustotal import quota
from ..virustotal.errors import RateLimitedError, VirusTotalError, VTConnectionError
from ..virustotal.gateway import KeyBusy, gated_client
from . import crypto
from .models import ApiKey

log = logging.getLogger(__name__)


# What a stored key value must look like (VirusTotal's own keys are 64 hex digits).
KEY_MIN, KEY_MAX = 16, 256
KEY_CHARS = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces


class KeyRejected(ValidationFailed):
    code, message = "INVALID_API_KEY", "VirusTotal rejected this API key"


@dataclass(frozen=True)
class Check:
    """What VirusTotal said about a key: `valid` is None when it could not be asked."""

    valid: bool | None
    message: str
    retry_after: float = 0.0


def list_keys(user: User) -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at)))


def get_key(user: User, key_id: str) -> ApiKey:
    """The user's key; another user's key is answered like a missing one (even for admins:
    a key spends its owner's VirusTotal quota)."""
    key = db.session.get(ApiKey, parse_uuid(key_id, "API key ID"))
    if key is None or key.user_id != user.id:
        raise NotFound("API key not found")
    return key


def create_key(user: User, data: dict[str, Any]) -> ApiKey:
    value = data["key_value"]
    per_minute = data.get("per_minute", current_app.config["VT_DEFAULT_PER_MINUTE"])
    per_day = data.get("per_day", current_app.config["VT_DEFAULT_PER_DAY"])
    _refuse_duplicate(user, crypto.fingerprint(value))
    now = utcnow()
    key = ApiKey(
        user_id=user.id, name=data["name"], per_minute=per_minute, per_day=per_day, created_at=now, updated_at=now
    )
    _set_value(key, value, per_minute=per_minute, per_day=per_day)
    db.session.add(key)
    _flush_unique()
    log.info("API key %s (…%s) added for user %s, verified=%s", key.id, key.last4, user.id, key.is_verified)
    return key


def update_key(user: User, key_id: str, data: dict[str, Any]) -> ApiKey:
    key = get_key(user, key_id)
    if not data:
        raise ValidationFailed("No update data provided")
    # Every query and the VirusTotal check come before the first change to the row: a flushed
    # change would hold SQLite's write lock while the quota store waits for it.
    value = data.get("key_value")
    if value is not None and crypto.fingerprint(value) != key.fingerprint:
        _refuse_duplicate(user, crypto.fingerprint(value))
        limits = {name: data.get(name, getattr(key, name)) for name in ("per_minute", "per_day")}
        _set_value(key, value, **limits)
        key.exhausted_until = None  # a pause belonged to the old key's budget
    for name in ("name", "is_active", "per_minute", "per_day"):
        if name in data:
            setattr(key, name, data[name])
    _flush_unique()
    log.info("API key %s (…%s) of user %s updated: %s", key.id, key.last4, user.id, sorted(data))
    return key


def delete_key(user: User, key_id: str) -> None:
    key = get_key(user, key_id)
    db.session.delete(key)
    db.session.flush()
    log.info("API key %s (…%s) of user %s deleted", key.id, key.last4, user.id)


def validate_value(user: User, value: str) -> Check:
    """Ask VirusTotal about a key without storing it. The check spends a token of the key's
    budget (the stored key's limits if the user has it, else the public API's): with none free
    it raises QuotaExhausted, and ProviderError when VirusTotal cannot be reached."""
    if not (KEY_MIN <= len(value) <= KEY_MAX and re.fullmatch(KEY_CHARS, value)):
        # Cannot be a key: no VirusTotal request (nor quota) is spent to say so.
        return Check(False, f"Not an API key: it must be {KEY_MIN} to {KEY_MAX} printable characters without spaces")
    fingerprint = crypto.fingerprint(value)
    stored = db.session.scalar(select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.fingerprint == fingerprint))
    cfg = current_app.config
    budget = quota.Budget(
        fingerprint,
        stored.per_minute if stored else cfg["VT_DEFAULT_PER_MINUTE"],
        stored.per_day if stored else cfg["VT_DEFAULT_PER_DAY"],
    )
    check = _check(value, budget)
    if check.valid is None and check.retry_after:
        raise QuotaExhausted(check.message, retry_after=check.retry_after)
    if check.valid is None:
        raise ProviderError(check.message)
    return check


def describe(key: ApiKey) -> dict[str, Any]:
    """The key as the API shows it, with its budget's usage now (None while the quota store is
    unreachable: the key itself is still worth showing)."""
    try:
        usage: dict[str, Any] | None = quota.usage(key)
    except quota.QuotaStoreUnavailable:
        usage = None
    if usage is not None:
        exhausted_until = usage.pop("exhausted_until")
    else:  # the pause VirusTotal's last 429 set, as the row remembers it
        paused = key.exhausted_until
        exhausted_until = paused if paused is not None and paused > utcnow() else None
    fields = ("id", "name", "is_active", "created_at", "updated_at", "last4", "is_verified")
    fields += ("per_minute", "per_day", "last_used_at", "last_error")
    return {**{name: getattr(key, name) for name in fields}, "usage": usage, "exhausted_until": exhausted_until}


def _set_value(key: ApiKey, value: str, per_minute: int, per_day: int) -> None:
    """Check the new value with VirusTotal, then store it encrypted; a rejected key is not kept."""
    fingerprint = crypto.fingerprint(value)
    check = _check(value, quota.Budget(fingerprint, per_minute, per_day))
    if check.valid is False:
        raise KeyRejected(check.message)
    key.ciphertext = crypto.encrypt(value)
    key.fingerprint = fingerprint
    key.last4 = value[-4:]
    key.is_verified = bool(check.valid)
    key.last_error = None if check.valid else check.message


def _check(value: str, budget: quota.Budget) -> Check:
    try:
        valid = gated_client(value, budget).validate_key()
    except KeyBusy as exc:
        return Check(None, "Not verified: the key's VirusTotal quota is in use right now", retry_after=exc.retry_after)
    except RateLimitedError:
        # VirusTotal checks the key before its quota: a 429 means the key is known.
        quota.mark_exhausted(budget, "minute")
        return Check(True, "API key is valid (its VirusTotal quota is used up for now)")
    except VTConnectionError as exc:  # the client gave the token back if the request never left
        return Check(None, f"Not verified: {exc}")
    except VirusTotalError as exc:
        log.warning("could not check an API key with VirusTotal: %s", exc)
        return Check(None, f"Not verified: VirusTotal could not check it ({exc.code})")
    if not valid:
        return Check(False, "VirusTotal rejected this API key")
    return Check(True, "API key is valid")


def _refuse_duplicate(user: User, fingerprint: str) -> None:
    existing = db.session.scalar(select(ApiKey.id).where(ApiKey.user_id == user.id, ApiKey.fingerprint == fingerprint))
    if existing is not None:
        raise Conflict("This API key is already stored", details={"id": str(existing)})


def _flush_unique() -> None:
    # Two requests storing the same key at once both pass the check above; the constraint
    # stops the second.
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("This API key is already stored") from None

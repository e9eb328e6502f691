"""Seed 002's health: one status and a fixed sentence per part, never a driver's text.

The endpoint needs no sign-in, so what went wrong goes to the log and the body says only healthy
or not. VirusTotal is not called (a health probe must not spend anyone's quota): its status is
what the stored keys say about their last calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app
from sqlalchemy import case, func, select

from ..api_keys.models import ApiKey
from ..db_types import utcnow
from ..extensions import db
from ..system.health import database_reachable, redis_reachable

log = logging.getLogger(__name__)


def _component(name: str, check: Callable[[], object], ok: str, down: str) -> dict:
    try:
        check()
    except Exception as exc:  # any failure is the finding; its text stays in the log
        log.warning("health: %s is down: %s: %s", name, type(exc).__name__, exc)
        return {"status": "unhealthy", "message": down}
    return {"status": "healthy", "message": ok}


def _redis() -> dict:
    if not current_app.config.get("REDIS_URL"):
        return {"status": "not_configured", "message": "Embedded mode: no Redis configured"}
    return _component("redis", redis_reachable, "Redis connection successful", "Redis unreachable")


def _virustotal() -> dict:
    unverified_count = func.coalesce(func.sum(case((ApiKey.is_verified.is_(False), 1), else_=0)), 0)
    active, failing, unverified = db.session.execute(
        select(func.count(), func.count(ApiKey.last_error), unverified_count).where(ApiKey.is_active.is_(True))
    ).one()
    if not active:
        return {"status": "unconfigured", "message": "No active API key"}
    # A key stored while VirusTotal could not be reached has not been checked by VirusTotal yet.
    if unverified == active:
        return {"status": "degraded", "message": "No active API key has been verified by VirusTotal yet"}
    if failing == active:
        return {"status": "degraded", "message": "Every active API key reported an error on its last call"}
    if unverified:
        return {
            "status": "healthy",
            "message": f"Provider available; {unverified} of {active} active keys not verified yet",
        }
    return {"status": "healthy", "message": "Provider available"}


def _virustotal_or_unknown() -> dict:
    try:
        return _virustotal()
    except Exception as exc:  # the key table could not be read: say so, without the reason
        log.warning("health: could not read the API keys: %s: %s", type(exc).__name__, exc)
        db.session.rollback()
        return {"status": "unknown", "message": "Provider status unavailable"}


def health() -> tuple[dict, int]:
    database = _component("database", database_reachable, "Database connection successful", "Database unreachable")
    if database["status"] == "healthy":
        virustotal = _virustotal_or_unknown()
    else:
        db.session.rollback()
        virustotal = {"status": "unknown", "message": "Provider status unavailable"}
    redis = _redis()
    if database["status"] != "healthy":
        status = "unavailable"
    elif redis["status"] == "unhealthy" or virustotal["status"] != "healthy":
        status = "degraded"
    else:
        status = "ok"
    body = {
        "status": status,
        "timestamp": utcnow().isoformat(),
        "components": {"database": database, "redis": redis, "providers": {"virustotal": virustotal}},
    }
    return body, 503 if status == "unavailable" else 200

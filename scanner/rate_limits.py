"""Who a request counts against, the budget every route shares, and seed 002's headers.

Every limited route spends one budget per client (RATE_LIMIT_PER_MINUTE and RATE_LIMIT_PER_HOUR,
Flask-Limiter's application limits, which share one scope across routes); sign-in, registration and
uploads add stricter limits of their own. Each response of a limited route says what is left:

    X-RateLimit-Limit-Minute / X-RateLimit-Remaining-Minute
    X-RateLimit-Limit-Hour   / X-RateLimit-Remaining-Hour

the tightest limit of each window length applying to the request. `Retry-After` is sent on a 429
only, with the same number of seconds as the body's `details.retry_after`.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, g, request
from flask_jwt_extended import decode_token
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from .errors import envelope, error_type

log = logging.getLogger(__name__)

_UNSET = object()


def request_identity() -> str | None:
    """The user id of a request's bearer token, once per request and from the signature alone.

    Cheap on purpose: no database, no Redis. A revoked token still names its user here (and is
    refused by the route); a forged or expired one names nobody, so it counts against its address.
    """
    cached = g.get("_token_identity", _UNSET)
    if cached is not _UNSET:
        return cached
    identity = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        try:
            identity = str(decode_token(header[len("Bearer ") :])["sub"])
        except Exception:  # any unusable token: the route answers it, the limiter uses the address
            identity = None
    g._token_identity = identity
    return identity


def rate_limit_key() -> str:
    """Limit a signed-in caller per account, anyone else per address."""
    identity = request_identity()
    return f"user:{identity}" if identity else f"ip:{get_remote_address()}"


def shared_budget() -> str:
    cfg = current_app.config
    return f"{cfg['RATE_LIMIT_PER_MINUTE']} per minute;{cfg['RATE_LIMIT_PER_HOUR']} per hour"


def _retry_after(limit: RequestLimit) -> int:
    return max(1, math.ceil(limit.window[0] - time.time()))


def limit_breached(limit: RequestLimit) -> Response:
    """The 429 in the error envelope, its Retry-After equal to the body's retry_after."""
    seconds = _retry_after(limit)
    return envelope(
        429,
        "RATE_LIMIT_EXCEEDED",
        f"Rate limit exceeded: {limit.limit}",
        error_type(429),
        {"retry_after": seconds},
        {"Retry-After": str(seconds)},
    )


def _tightest(limits: list[RequestLimit], longest_window: int, shortest_window: int) -> RequestLimit | None:
    fitting = [lim for lim in limits if shortest_window <= lim.limit.get_expiry() <= longest_window]
    return min(fitting, key=lambda lim: lim.remaining, default=None)


def add_rate_limit_headers(limiter: Limiter, response: Response) -> Response:
    # The shared budget is checked before the view and a route's own limits in it; Flask-Limiter
    # keeps only the last check's list, so the first one was put aside.
    limits = list({lim.key: lim for lim in [*g.get("_budget_limits", []), *limiter.current_limits]}.values())
    if not limits:
        return response
    try:
        for name, window in (("Minute", _tightest(limits, 60, 1)), ("Hour", _tightest(limits, 3600, 61))):
            if window is not None:
                response.headers[f"X-RateLimit-Limit-{name}"] = str(window.limit.amount)
                response.headers[f"X-RateLimit-Remaining-{name}"] = str(max(0, window.remaining))
    except Exception:  # the limit store went away after the check: the answer matters more
        log.warning("rate-limit headers skipped: the limit store did not answer", exc_info=True)
    return response


def init_rate_limit_headers(app: Flask, limiter: Limiter) -> None:
    """Registered right after the limiter, so its before_request hook has run when ours does."""

    @app.before_request
    def keep_budget_limits() -> None:
        g._budget_limits = list(limiter.current_limits)

    app.after_request(lambda response: add_rate_limit_headers(limiter, response))

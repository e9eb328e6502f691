"""Who a request counts against, the budget every route shares, and seed 002's headers.

Every limited route spends one budget per client (RATE_LIMIT_PER_MINUTE and RATE_LIMIT_PER_HOUR),
shared across routes; sign-in, registration, uploads and key checks add stricter limits of their
own. Each response of a limited route says what is left:

    X-RateLimit-Limit-Minute / X-RateLimit-Remaining-Minute
    X-RateLimit-Limit-Hour   / X-RateLimit-Remaining-Hour

the tightest limit of each window length applying to the request, from the counts the check
itself returned (no second read). `Retry-After` is sent on a 429 only, with the same number of
seconds as the body's `details.retry_after`.

Where the counts live (scanner/limit_counters.py): in Redis (RATELIMIT_STORAGE_URI, by default
REDIS_URL), each process counting a few requests at a time in one round trip; while Redis is away,
in the database, so every web process keeps sharing one count and a limit is never split into
one per process. Without Redis (embedded mode), in each web process's memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse_many

from .errors import envelope, error_type

if TYPE_CHECKING:
    from .limit_counters import Window

# The two header families of seed 002: windows up to a minute, and longer ones up to an hour.
HEADER_WINDOWS = (("Minute", 1, 60), ("Hour", 61, 3600))


@dataclass(frozen=True)
class Counted:
    """One window of one limit, as counted for this request."""

    amount: int
    seconds: int
    count: int
    reset_in: float  # seconds until the window starts again

    @property
    def remaining(self) -> int:
        return max(0, self.amount - self.count)

    @property
    def breached(self) -> bool:
        return self.count > self.amount


@dataclass(frozen=True)
class RouteLimit:
    rates: Callable[[], str]  # "20 per minute;200 per hour", read when the request comes
    scope: str | None  # routes sharing a scope share the count; None: this route alone
    key: Callable[[], str] | None  # whom it counts; None: the client (user, else address)
    methods: frozenset[str] | None


def request_identity() -> str | None:
    """The user id of the request's verified access token (scanner/auth/access.py checks it once
    per request, before the limiter); None for anyone else, a revoked or forged token included."""
    return g.get("token_identity")


def rate_limit_key() -> str:
    """Limit a signed-in caller per account, anyone else per address."""
    identity = request_identity()
    return f"user:{identity}" if identity else f"ip:{get_remote_address()}"


def report(amount: int, seconds: int, count: int, reset_in: float) -> None:
    """A limit counted elsewhere (sign-in attempts, in the database) joins this response's headers."""
    g.setdefault("rate_limit_windows", []).append(Counted(amount, seconds, count, reset_in))


def limit_breached(breached: list[Counted]) -> Response:
    """The 429 in the error envelope, its Retry-After equal to the body's retry_after."""
    seconds = max(1, math.ceil(max(window.reset_in for window in breached)))
    tightest = min(breached, key=lambda window: window.amount)
    return envelope(
        429,
        "RATE_LIMIT_EXCEEDED",
        f"Rate limit exceeded: {tightest.amount} per {tightest.seconds} second(s)",
        error_type(429),
        {"retry_after": seconds},
        {"Retry-After": str(seconds)},
    )


def add_rate_limit_headers(response: Response) -> Response:
    windows = g.get("rate_limit_windows")
    if not windows:
        return response
    for name, shortest, longest in HEADER_WINDOWS:
        fitting = [window for window in windows if shortest <= window.seconds <= longest]
        if fitting:
            tightest = min(fitting, key=lambda window: (window.remaining, window.amount))
            response.headers[f"X-RateLimit-Limit-{name}"] = str(tightest.amount)
            response.headers[f"X-RateLimit-Remaining-{name}"] = str(tightest.remaining)
    return response


class RateLimiter:
    """The shared budget on every route but the exempt ones, plus the limits routes declare."""

    def __init__(self) -> None:
        self.enabled = True
        self.counters = None

    def init_app(self, app: Flask) -> None:
        from .limit_counters import counters_for

        self.enabled = app.config["RATELIMIT_ENABLED"]
        self.counters = counters_for(app.config["RATELIMIT_STORAGE_URI"])
        app.before_request(self.check)
        app.after_request(add_rate_limit_headers)

    # -- what routes declare ------------------------------------------------------------------

    @staticmethod
    def exempt(view: Callable) -> Callable:
        """Neither the budget nor any limit (probes, the metrics scrape)."""
        view.rate_limit_exempt = True
        return view

    @staticmethod
    def limit(
        rates: Callable[[], str],
        *,
        scope: str | None = None,
        key_func: Callable[[], str] | None = None,
        methods: list[str] | None = None,
    ) -> Callable[[Callable], Callable]:
        """A stricter limit of the decorated view's own, on top of the shared budget."""

        def decorator(view: Callable) -> Callable:
            declared = RouteLimit(rates, scope, key_func, frozenset(m.upper() for m in methods) if methods else None)
            # Kept on the function: wrappers made with functools.wraps (login_required) carry it out.
            view.rate_limits = [*getattr(view, "rate_limits", ()), declared]
            return view

        return decorator

    # -- each request -------------------------------------------------------------------------

    def _windows(self, view: Callable) -> list[Window]:
        """(counter key, seconds, amount) of every window this request spends."""
        cfg = current_app.config
        client = rate_limit_key()
        found = [
            (f"budget:{client}", 60, cfg["RATE_LIMIT_PER_MINUTE"]),
            (f"budget:{client}", 3600, cfg["RATE_LIMIT_PER_HOUR"]),
        ]
        for declared in getattr(view, "rate_limits", ()):
            if declared.methods is not None and request.method not in declared.methods:
                continue
            scope = declared.scope or request.endpoint
            who = declared.key() if declared.key else client
            found += [(f"{scope}:{who}", rate.get_expiry(), rate.amount) for rate in parse_many(declared.rates())]
        return found

    def check(self) -> Response | None:
        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        if not self.enabled or view is None or getattr(view, "rate_limit_exempt", False):
            return None
        windows = self._windows(view)
        counts = self.counters.hit(windows, time.time())
        counted = [
            Counted(amount, seconds, count, reset_in)
            for (_, seconds, amount), (count, reset_in) in zip(windows, counts, strict=True)
        ]
        g.rate_limit_windows = counted
        breached = [window for window in counted if window.breached]
        return limit_breached(breached) if breached else None

    def reset(self) -> None:
        """Forget what this process counted or holds (Redis and the database are cleared apart)."""
        if self.counters is not None:
            self.counters.reset()


# The one limiter, bound to the app in `create_app`. Uploads (files and bulk lists) spend a
# stricter budget of their own too, per client.
limiter = RateLimiter()
upload_limit = limiter.limit(lambda: current_app.config["UPLOAD_RATE_LIMIT"], scope="uploads", methods=["POST"])

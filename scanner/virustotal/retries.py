"""When to try a failed VirusTotal call again, and what to tell the user meanwhile.

The growing pause suits VirusTotal answering badly for a while. With no connection at all the
pauses are kept short (VT_UNREACHABLE_RETRY_MAX_SECONDS): the user hears within minutes that
VirusTotal cannot be reached, and work resumes soon after the network does.
"""

from __future__ import annotations

import random
from datetime import timedelta

from flask import current_app

from ..db_types import utcnow
from .errors import VirusTotalError, VTConnectionError


def backoff(attempt: int, base: float, cap: float) -> float:
    """The longest pause after failed attempt number `attempt` (1, 2, ...)."""
    return min(cap, base * 2 ** (attempt - 1))


def retry(exc: VirusTotalError, attempt: int, max_attempts: int, base: float, cap: float) -> tuple[float, str]:
    """(seconds until the next attempt, the note to show) after failed attempt `attempt`."""
    if isinstance(exc, VTConnectionError) and not exc.reached:
        cap = min(cap, current_app.config["VT_UNREACHABLE_RETRY_MAX_SECONDS"])
    last = utcnow() + timedelta(seconds=sum(backoff(k, base, cap) for k in range(attempt, max_attempts)))
    # Jitter spreads the retries of many rows that failed together.
    return backoff(attempt, base, cap) * random.uniform(0.5, 1.0), f"{exc}; retrying until {last:%H:%M:%S} UTC"

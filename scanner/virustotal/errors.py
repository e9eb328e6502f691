"""Typed VirusTotal errors: one class per error code of the v3 API, plus the transport failures.

`retryable` tells a caller whether the same request may succeed later with the same key; an
`InvalidKeyError` or `RateLimitedError` asks for a different reaction (drop the key, wait for the
window), which is why those get shared bases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class VirusTotalError(Exception):
    """Base of every error the client raises; `code` is VirusTotal's error code."""

    code: str = "VirusTotalError"
    http_status: int | None = None
    retryable: bool = False

    def __init__(self, message: str = "", *, code: str | None = None, http_status: int | None = None) -> None:
        self.message = message or type(self).__name__
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        super().__init__(self.message)

    def __str__(self) -> str:
        status = f"HTTP {self.http_status} " if self.http_status is not None else ""
        return f"{status}{self.code}: {self.message}"


class BadRequestError(VirusTotalError):
    code, http_status = "BadRequestError", 400


class InvalidArgumentError(VirusTotalError):
    code, http_status = "InvalidArgumentError", 400


class NotAvailableYet(VirusTotalError):
    code, http_status, retryable = "NotAvailableYet", 400, True


class InvalidKeyError(VirusTotalError):
    """The key is missing, inactive or wrong: retrying with the same key cannot help."""

    code, http_status = "InvalidKeyError", 401


class AuthenticationRequiredError(InvalidKeyError):
    code = "AuthenticationRequiredError"


class UserNotActiveError(InvalidKeyError):
    code = "UserNotActiveError"


class WrongCredentialsError(InvalidKeyError):
    code = "WrongCredentialsError"


class ForbiddenError(VirusTotalError):
    code, http_status = "ForbiddenError", 403


class NotFoundError(VirusTotalError):
    code, http_status = "NotFoundError", 404


class AlreadyExistsError(VirusTotalError):
    code, http_status = "AlreadyExistsError", 409


class FailedDependencyError(VirusTotalError):
    code, http_status, retryable = "FailedDependencyError", 424, True


class RateLimitedError(VirusTotalError):
    """The key's quota or request rate is used up: wait for the window or use another key."""

    code, http_status = "RateLimitedError", 429


class QuotaExceededError(RateLimitedError):
    code = "QuotaExceededError"


class TooManyRequestsError(RateLimitedError):
    code = "TooManyRequestsError"


class TransientError(VirusTotalError):
    code, http_status, retryable = "TransientError", 503, True


class DeadlineExceededError(VirusTotalError):
    code, http_status, retryable = "DeadlineExceededError", 504, True


class VTConnectionError(VirusTotalError):
    """No usable answer: no connection (name resolution, refused, timed out, TLS), or one dropped
    or silent after the request went out.

    `reason` says which, in words a user can act on (the library's text goes to the logs only).
    `reached` is False when the request never got to VirusTotal: nothing was counted against the
    key, so the token taken for it can be given back, and retrying soon only makes sense if the
    network comes back. The message reads "VirusTotal could not be reached (<reason>)".
    """

    code, retryable = "ConnectionError", True

    def __init__(self, reason: str, *, reached: bool) -> None:
        self.reason, self.reached = reason, reached
        what = "VirusTotal did not answer" if reached else "VirusTotal could not be reached"
        super().__init__(f"{what} ({reason})")

    def __str__(self) -> str:
        return self.message


class UnknownVTError(VirusTotalError):
    """An answer with a code this client does not know (or an unexpected, non-JSON answer)."""

    code = "UnknownError"

    def __init__(self, message: str = "", *, code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.retryable = self.http_status is not None and self.http_status >= 500


class FileTooLargeError(VirusTotalError):
    """The file is over VirusTotal's upload limit; raised before any request is made."""

    code = "FileTooLargeError"


ERRORS_BY_CODE: dict[str, type[VirusTotalError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        InvalidArgumentError,
        NotAvailableYet,
        AuthenticationRequiredError,
        UserNotActiveError,
        WrongCredentialsError,
        ForbiddenError,
        NotFoundError,
        AlreadyExistsError,
        FailedDependencyError,
        QuotaExceededError,
        TooManyRequestsError,
        TransientError,
        DeadlineExceededError,
    )
}

# Used only when the body carries no error code (a proxy's HTML page, an empty body).
_ERRORS_BY_STATUS: dict[int, type[VirusTotalError]] = {
    400: BadRequestError,
    401: InvalidKeyError,
    403: ForbiddenError,
    404: NotFoundError,
    409: AlreadyExistsError,
    424: FailedDependencyError,
    429: TooManyRequestsError,
    503: TransientError,
    504: DeadlineExceededError,
}

_MAX_MESSAGE = 300


def _error_envelope(body: bytes | str | Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(code, message) from an error body, or (None, a short excerpt) when it is not an envelope."""
    if body is None:
        return None, ""
    if isinstance(body, Mapping):
        parsed: Any = body
    else:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            parsed = json.loads(text)
        except ValueError:
            return None, text.strip()[:_MAX_MESSAGE]
    error = parsed.get("error") if isinstance(parsed, Mapping) else None
    if not isinstance(error, Mapping):
        return None, json.dumps(parsed)[:_MAX_MESSAGE]
    code = error.get("code")
    message = error.get("message")
    return (code if isinstance(code, str) and code else None), (str(message) if message is not None else "")


def error_from_response(status: int, body: bytes | str | Mapping[str, Any] | None) -> VirusTotalError:
    """The typed exception for a non-2xx answer with this status and body."""
    code, message = _error_envelope(body)
    if code is not None:
        cls = ERRORS_BY_CODE.get(code)
        if cls is None:
            return UnknownVTError(message, code=code, http_status=status)
        return cls(message, http_status=status)
    fallback = _ERRORS_BY_STATUS.get(status)
    if fallback is None:
        return UnknownVTError(message or f"unexpected HTTP {status}", code=f"HTTP{status}", http_status=status)
    return fallback(message or f"HTTP {status} without an error code", http_status=status)

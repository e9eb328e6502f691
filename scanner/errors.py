"""The one error envelope, the domain exceptions, and every handler that produces it.

Every error leaves the service as
``{"error": {"code": "...", "message": "...", "type": "...", "details": {...}}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from flask_smorest import Api
from marshmallow import Schema, fields
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from .logs import request_id

log = logging.getLogger(__name__)


class AppError(Exception):
    """A domain error with the HTTP status and the code it is answered with."""

    status = 500
    code = "INTERNAL_ERROR"
    message = "An unexpected error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        if code:
            self.code = code
        self.headers = headers or {}


class ValidationFailed(AppError):
    status, code, message = 400, "VALIDATION_ERROR", "The request is invalid"


class InvalidIndicator(ValidationFailed):
    code = "IOC_VALIDATION_ERROR"


class NoActiveApiKey(ValidationFailed):
    code, message = "NO_ACTIVE_API_KEY", "No active API key found"


class Unauthorized(AppError):
    status, code, message = 401, "AUTHENTICATION_ERROR", "Authentication failed"


class Forbidden(AppError):
    status, code, message = 403, "AUTHORIZATION_ERROR", "You are not allowed to do this"


class NotFound(AppError):
    status, code, message = 404, "NOT_FOUND", "Not found"


class Conflict(AppError):
    status, code, message = 409, "CONFLICT", "Already exists"


class PayloadTooLarge(AppError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "The request body is too large"


class RetryLater(AppError):
    """Refused for now: `Retry-After` (whole seconds) in the headers and in the envelope's details."""

    def __init__(self, message: str | None = None, *, retry_after: float, **kwargs: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        kwargs.setdefault("headers", {})["Retry-After"] = str(seconds)
        kwargs.setdefault("details", {})["retry_after"] = seconds
        super().__init__(message, **kwargs)
        self.retry_after = seconds


class RateLimited(RetryLater):
    status, code, message = 429, "RATE_LIMIT_EXCEEDED", "Too many requests"


class ServiceBusy(RetryLater):
    status, code, message = 503, "SERVICE_BUSY", "The service is at capacity"


class QuotaExhausted(AppError):
    """No VirusTotal budget is left on any usable key; `retry_after` says when one frees."""

    status, code, message = 429, "VT_QUOTA_EXHAUSTED", "VirusTotal quota exhausted"

    def __init__(self, message: str | None = None, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.details.setdefault("retry_after", round(retry_after, 3))


class ProviderError(AppError):
    status, code, message = 502, "PROVIDER_ERROR", "VirusTotal could not answer"


class ServiceUnavailable(RetryLater):
    """A store the request needs (the database, Redis) cannot be reached right now."""

    status, code, message = 503, "SERVICE_UNAVAILABLE", "The service is briefly unavailable; try again shortly"

    def __init__(self, message: str | None = None, *, retry_after: float = 5, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


# What a blink of a store looks like from here: the database or Redis refused, dropped or did not
# answer the connection. Answered 503 + Retry-After, never 500.
STORE_OUTAGES: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    redis.ConnectionError,
    redis.TimeoutError,
)


# `type` is the error's kind, one per status, so a client can branch on it; `code` says more.
ERROR_TYPES = {
    400: "ValidationError",
    401: "AuthenticationError",
    403: "AuthorizationError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    409: "ConflictError",
    413: "PayloadTooLargeError",
    415: "UnsupportedMediaTypeError",
    429: "RateLimitError",
    502: "ProviderError",
    503: "ServiceUnavailableError",
}

HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "AUTHENTICATION_ERROR",
    403: "AUTHORIZATION_ERROR",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMIT_EXCEEDED",
}


def envelope(status: int, code: str, message: str, type_: str, details: dict | None = None, headers=None):
    body = {"error": {"code": code, "message": message, "type": type_, "details": details or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_message(messages: dict) -> str:
    """One readable line out of webargs' nested messages: 'email: Not a valid email address.'"""
    parts: list[str] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, list) and node and all(isinstance(x, str) for x in node):
            parts.append(f"{prefix}: {' '.join(node)}" if prefix else " ".join(node))
        elif isinstance(node, list):
            for item in node:
                walk(prefix, item)
        else:
            parts.append(f"{prefix}: {node}")

    for location_messages in messages.values():
        walk("", location_messages)
    return "; ".join(parts) or "The request is invalid"


def _not_json_message(messages: dict) -> str | None:
    """What to say when a JSON body was expected and a form or text came: every field is
    "missing", though the client sent them in another shape."""
    fields = messages.get("json")
    if request.is_json or not isinstance(fields, dict) or not fields:
        return None
    names = [name for name in fields if not name.startswith("_")]
    wanted = (
        f" with {', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else f" with {names[0]}" if names else ""
    )
    return f"Send a JSON body (Content-Type: application/json){wanted}"


def http_error_response(error: HTTPException):
    if isinstance(error.response, Response):  # already an envelope (the rate limiter's 429)
        return error.response
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    if status == 422 or (status == 400 and "messages" in data):
        # webargs reports schema failures as 422; the API contract answers invalid input with 400.
        messages = data.get("messages", {})
        message = _not_json_message(messages) or _validation_message(messages)
        return envelope(400, "VALIDATION_ERROR", message, error_type(400), messages, headers)
    if status == 429:
        message = f"Rate limit exceeded: {error.description}"
        return envelope(429, "RATE_LIMIT_EXCEEDED", message, error_type(429), {}, headers)
    message = data.get("message") or error.description or error.name
    return envelope(status, HTTP_CODES.get(status, "HTTP_ERROR"), message, error_type(status), {}, headers)


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "HttpError" if status < 500 else "InternalError")


def app_error_response(error: AppError):
    return envelope(error.status, error.code, error.message, error_type(error.status), error.details, error.headers)


def store_outage_response(error: Exception):
    log.warning("a store is unreachable (request_id=%s): %s", request_id(), type(error).__name__, exc_info=True)
    return app_error_response(ServiceUnavailable())


def unexpected_error_response(error: Exception):
    answered_id = request_id()
    log.exception("unhandled error (request_id=%s)", answered_id)
    return envelope(
        500,
        "INTERNAL_ERROR",
        "An unexpected error occurred; quote the request id when reporting it",
        error_type(500),
        {"request_id": answered_id},
    )


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.String(required=True)
    type = fields.String(required=True, metadata={"example": "ValidationError"})
    details = fields.Dict(required=True, metadata={"description": "Per-field messages, retry_after, request_id ..."})


class ErrorEnvelopeSchema(Schema):
    """What every error answers; documented for every error response of the OpenAPI document."""

    error = fields.Nested(ErrorBodySchema, required=True)


class ScannerApi(Api):
    """flask-smorest's Api, answering its own HTTP errors with the envelope too."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def handle_http_exception(self, error: HTTPException):
        return http_error_response(error)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, app_error_response)
    app.register_error_handler(HTTPException, http_error_response)
    for outage in STORE_OUTAGES:
        app.register_error_handler(outage, store_outage_response)
    app.register_error_handler(Exception, unexpected_error_response)


def register_jwt_handlers(jwt) -> None:
    def unauthorized(message: str, code: str = "AUTHENTICATION_ERROR"):
        return envelope(401, code, message, error_type(401))

    jwt.unauthorized_loader(lambda reason: unauthorized(f"Missing or malformed token: {reason}", "TOKEN_MISSING"))
    jwt.invalid_token_loader(lambda reason: unauthorized(f"Invalid token: {reason}", "TOKEN_INVALID"))
    jwt.expired_token_loader(lambda header, payload: unauthorized("Token has expired", "TOKEN_EXPIRED"))
    jwt.revoked_token_loader(lambda header, payload: unauthorized("Token has been revoked", "TOKEN_REVOKED"))
    jwt.needs_fresh_token_loader(lambda header, payload: unauthorized("Fresh token required", "TOKEN_NOT_FRESH"))
    jwt.user_lookup_error_loader(lambda header, payload: unauthorized("User no longer exists", "USER_NOT_FOUND"))

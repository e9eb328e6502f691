"""Every error leaves the service in the one envelope, with the right status and no stack trace."""

import logging

import pytest

from tests.assertions import assert_error

# One `type` per kind of failure, whichever layer raised it, so clients can branch on it.
TYPES = {
    400: "ValidationError",
    401: "AuthenticationError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "PayloadTooLargeError",
    500: "InternalError",
}


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    """The envelope, with the error type that goes with the status."""
    error = assert_error(response, status, code)
    assert error["type"] == TYPES[status]
    return error


def test_unknown_route_is_404_envelope(client):
    assert_envelope(client.get("/api/no-such-thing"), 404, "NOT_FOUND")


def test_wrong_method_is_405_envelope_with_allow(client):
    response = client.delete("/api/health")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_400(client):
    response = client.post("/api/auth/register", data='{"username": "x",', headers={"Content-Type": "application/json"})
    assert_envelope(response, 400)


def test_unknown_fields_are_rejected_with_details(client):
    body = {"username": "someone", "email": "someone@example.com", "password": "Correct-Horse-42", "admin": True}
    error = assert_envelope(client.post("/api/auth/register", json=body), 400, "VALIDATION_ERROR")
    assert "admin" in str(error["details"])


def test_wrong_content_type_is_400_not_500(client):
    response = client.post("/api/auth/register", data="username=a", content_type="text/plain")
    assert_envelope(response, 400)


def test_oversized_body_is_413_envelope(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client.post("/api/auth/register", data=b"x" * 4096, content_type="application/json")
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_missing_token_is_401_envelope(client):
    assert_envelope(client.get("/api/auth/profile"), 401)


def test_garbage_token_is_401_envelope(client):
    assert_envelope(client.get("/api/auth/profile", headers={"Authorization": "Bearer not.a.token"}), 401)


def test_unexpected_error_is_500_with_request_id_and_no_trace(client, monkeypatch, caplog):
    import scanner.system.routes as routes

    def explode():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(routes, "readiness", explode)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/health/ready", headers={"X-Request-ID": "req-12345"})
    error = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert error["details"]["request_id"] == "req-12345"
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert any("req-12345" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("path", ["/api/health", "/api/no-such-thing"])
def test_security_headers_and_request_id_on_every_response(client, path):
    response = client.get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Request-ID"]


def test_a_collection_answers_with_or_without_its_trailing_slash(client, user):
    with_slash = client.get("/api/keys/", headers=user.headers)
    without = client.get("/api/keys", headers=user.headers)
    assert with_slash.status_code == without.status_code == 200
    assert without.json == with_slash.json


def test_service_and_schema_validation_errors_share_one_type(client, user):
    schema = client.post("/api/auth/register", json={"username": 5})
    service = client.post("/api/scan/file/not-a-uuid", json={}, headers=user.headers)
    assert assert_envelope(schema, 400)["type"] == assert_envelope(service, 400)["type"]


def test_a_json_body_is_capped_far_below_the_upload_limit(app, client, make_user):
    # MAX_CONTENT_LENGTH admits 650 MB uploads; a JSON body is parsed whole in memory, so it has its own cap.
    user = make_user()
    huge = b'{"ioc": "' + b"a" * (app.config["MAX_JSON_BYTES"] + 1) + b'"}'

    sized = client.post("/api/check_ioc", data=huge, content_type="application/json", headers=user.headers)
    note = client.post(
        "/api/lookup/00000000-0000-0000-0000-000000000000/notes",
        data=huge,
        content_type="application/json",
        headers=user.headers,
    )

    assert_envelope(sized, 413, "PAYLOAD_TOO_LARGE")
    assert_envelope(note, 413, "PAYLOAD_TOO_LARGE")
    small = client.post("/api/check_ioc", json={"ioc": "a" * 3000}, headers=user.headers)
    assert_envelope(small, 400)  # an ordinary body is read and judged as before

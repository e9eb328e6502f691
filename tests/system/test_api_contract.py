"""The OpenAPI document is the contract: its error envelope, UUID ids, named routes and list
parameters. schemathesis checks the rest against it (tests/system/test_contract_*.py)."""

from __future__ import annotations

import re

import pytest

from tests.assertions import assert_error

ERROR_REF = "#/components/schemas/Error"
READINESS_REF = "#/components/schemas/Readiness"  # not ready: which component is failing, with 503
HEALTH_REPORTS = {
    ("/api/health/ready", "503"): READINESS_REF,
    ("/api/providers/health", "503"): "#/components/schemas/Health",
}


@pytest.fixture
def spec(client) -> dict:
    return client.get("/api/openapi.json").json


def _operations(spec: dict):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method != "parameters":
                yield method.upper(), path, operation, operations.get("parameters", [])


def test_every_error_response_documents_the_envelope(spec):
    envelope = spec["components"]["schemas"]["Error"]
    assert envelope["required"] == ["error"]
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "type", "details"}

    shared = spec["components"]["responses"]
    for method, path, operation, _ in _operations(spec):
        assert "default" in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            if "$ref" in response:
                response = shared[response["$ref"].rsplit("/", 1)[-1]]
            # The two health probes answer 503 with their own report of what is down, not an error.
            expected = HEALTH_REPORTS.get((path, status), ERROR_REF)
            assert response["content"]["application/json"]["schema"] == {"$ref": expected}, (method, path, status)


def test_every_id_in_a_path_is_a_uuid(spec):
    for method, path, operation, shared in _operations(spec):
        parameters = [p for p in [*shared, *operation.get("parameters", [])] if p["in"] == "path"]
        assert sorted(p["name"] for p in parameters) == sorted(re.findall(r"{(\w+)}", path)), (method, path)
        for parameter in parameters:
            assert parameter["name"].endswith("_id")
            assert parameter["schema"] == {"type": "string", "format": "uuid"}, (method, path, parameter)


@pytest.mark.parametrize("path", ["/api/keys/validate", "/api/files/upload"])
def test_a_named_route_is_not_taken_for_an_id(client, user, path):
    options = client.options(path, headers=user.headers)
    assert set(options.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert_error(client.get(path, headers=user.headers), 405)


def test_a_malformed_id_is_still_400(client, user):
    # A malformed id is still the 400 seed 001 asks for, not routing's 404.
    for path in ("/api/keys/not-a-uuid", "/api/keys/nope", "/api/files/uploads", "/api/scan/nope/status"):
        assert_error(client.get(path, headers=user.headers), 400, "VALIDATION_ERROR")


def test_lists_refuse_unknown_query_parameters(client, user):
    for path in ("/api/files/", "/api/keys/", "/api/scan/results", "/api/lookups", "/api/bulk"):
        error = assert_error(client.get(path, query_string={"colour": "red"}, headers=user.headers), 400)
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"]["query"] == {"colour": ["Unknown field."]}, path

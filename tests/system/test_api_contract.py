"""The OpenAPI document is the contract: its error envelope and UUID ids, and schemathesis
(every check, positive and negative data, with and without a token) against the app served on
a loopback port, finding no failure."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.assertions import assert_error

ERROR_REF = "#/components/schemas/Error"
READINESS_REF = "#/components/schemas/Readiness"  # not ready: which component is failing, with 503
HEALTH_REPORTS = {
    ("/api/health/ready", "503"): READINESS_REF,
    ("/api/providers/health", "503"): "#/components/schemas/Health",
}
# Business rules no JSON Schema can state, each tested on its own: password strength, an
# indicator's grammar, a VirusTotal key VirusTotal accepts, a file that has content. Documented
# as 400s with their reasons; schemathesis would count each as "valid data refused".
SCHEMATHESIS_ARGS = [
    "--checks=all",
    "--exclude-checks=positive_data_acceptance",
    # Logging out would revoke the token the run uses; readiness answers 503 without a worker by
    # design (tests/system/test_health.py).
    "--exclude-path=/api/auth/logout",
    "--exclude-path=/api/health/ready",
    "--seed=14",
    "--workers=1",
    "--generation-database=none",
    "--no-color",
]


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


# Every phase and about 3,000 requests where CI runs the long proofs (PostgreSQL and Redis); a
# quick pass otherwise, without the coverage phase's boundary cases.
RUNS = {
    "services": ["--max-examples=25"],
    "embedded": ["--max-examples=8", "--phases=examples,fuzzing"],
}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@pytest.fixture
def served(app, monkeypatch):
    """The app on a free loopback port, its rate limits out of the way of a few thousand requests."""
    from scanner.extensions import limiter

    monkeypatch.setattr(limiter, "enabled", False)
    monkeypatch.setitem(app.config, "AUTH_RATE_LIMIT", "100000 per minute")
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_schemathesis_finds_no_failure(served, user, add_key, test_env, tmp_path):
    add_key(user)
    mode = RUNS["services" if test_env.get("REDIS_URL") else "embedded"]
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{served}/api/openapi.json"]
    command += ["--header", user.headers["Authorization"].join(["Authorization: ", ""]), *SCHEMATHESIS_ARGS]
    # In a folder of its own: schemathesis keeps a cache of what it found where it runs.
    run = subprocess.run([*command, *mode], capture_output=True, text=True, timeout=900, cwd=tmp_path)

    summary = run.stdout[-3000:]
    assert run.returncode == 0, run.stdout[-20000:]
    generated = int(re.search(r"(\d+) generated", summary).group(1))
    assert generated >= 200, summary
    assert "No issues found" in summary or " passed" in summary, summary

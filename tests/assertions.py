"""Assertions that many test modules make about what a client receives."""

from __future__ import annotations


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The JSON error envelope with this status (and code): returns its `error` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.json["error"]
    assert set(error) == {"code", "message", "type", "details"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error

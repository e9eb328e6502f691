from __future__ import annotations

import pytest

from .helpers import WebServer


@pytest.fixture
def start_web(test_env, tmp_path):
    """Start gunicorn serving the app: `start_web(config=..., **env_overrides)`; stopped after the test."""
    servers: list[WebServer] = []

    def start(config: str = "gunicorn.conf.py", **env: str) -> WebServer:
        server = WebServer(tmp_path, {k: str(v) for k, v in env.items()}, config)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()

"""Shared by the key tests: an address nothing listens on, and a call through the key selection."""

from __future__ import annotations

import socket
import uuid

from scanner.api_keys import selection
from scanner.auth.models import User
from scanner.extensions import db


def closed_port_url() -> str:
    """A VirusTotal base URL whose port refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v3"


def call_ip(flask_app, user_id: str, ip: str = "1.1.1.1") -> dict:
    """One VirusTotal lookup on the user's behalf, as the lookup and scan code make them."""
    with flask_app.app_context():
        user = db.session.get(User, uuid.UUID(user_id))
        return selection.call(user, lambda client: client.get_ip(ip))

"""VirusTotal keys at rest: MultiFernet encryption and a fingerprint to compare keys without
decrypting them.

`ENCRYPTION_KEYS` lists Fernet keys, newest first: the newest encrypts, every key decrypts, so
adding a key in front and running `flask keys rotate-encryption` retires the old ones. With none
set (embedded mode) one is generated once into `INSTANCE_DIR/encryption.key`, readable by the
owner only, and reused by every process that shares the instance folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

__all__ = ["InvalidToken", "decrypt", "encrypt", "fingerprint", "keyring", "reencrypt"]

KEY_FILE_NAME = "encryption.key"


def fingerprint(key_value: str) -> str:
    """SHA-256 of a key, hex.

    VirusTotal keys are 256 random bits, so the digest cannot be reversed or guessed, and unlike
    an HMAC under an encryption key it survives key rotation. It also names the key's quota
    budget: VirusTotal counts requests per key value, whoever stored it.
    """
    return hashlib.sha256(key_value.encode()).hexdigest()


def encrypt(key_value: str) -> bytes:
    return keyring().encrypt(key_value.encode())


def decrypt(ciphertext: bytes) -> str:
    """The key in clear; raises InvalidToken when no configured encryption key opens it."""
    return keyring().decrypt(ciphertext).decode()


def reencrypt(ciphertext: bytes) -> bytes:
    """The same key encrypted with the newest encryption key (MultiFernet.rotate)."""
    return keyring().rotate(ciphertext)


def keyring(app: Flask | None = None) -> MultiFernet:
    app = app or current_app._get_current_object()
    configured = app.config.get("ENCRYPTION_KEYS") or ""
    cached = app.extensions.get("api_key_keyring")
    if cached is not None and cached[0] == configured:
        return cached[1]
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    if not keys:
        keys = [_embedded_key(Path(app.config["INSTANCE_DIR"]))]
    try:
        fernet = MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        # The message must not echo the value: it is a secret.
        raise RuntimeError("ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)") from None
    app.extensions["api_key_keyring"] = (configured, fernet)
    return fernet


def _embedded_key(instance: Path) -> str:
    path = instance / KEY_FILE_NAME
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    # Written to a private temporary file and linked into place: link never replaces an existing
    # file, so when two processes start at once both end up with the one key that won.
    fd, tmp = tempfile.mkstemp(dir=instance, prefix=".encryption-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_text().strip()

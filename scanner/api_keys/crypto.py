"""VirusTotal keys at rest: MultiFernet encryption and a fingerprint to compare keys without
decrypting them.

`ENCRYPTION_KEYS` lists Fernet keys, newest first: the newest encrypts, every key decrypts, so
adding a key in front and running `flask keys rotate-encryption` retires the old ones. With none
set in embedded mode, config.py generates one once into `INSTANCE_DIR/encryption.key`.
"""

from __future__ import annotations

import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

__all__ = ["InvalidToken", "decrypt", "encrypt", "fingerprint", "keyring", "reencrypt"]


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
        raise RuntimeError("ENCRYPTION_KEYS is not set")
    try:
        fernet = MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        # The message must not echo the value: it is a secret.
        raise RuntimeError("ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe base64 bytes)") from None
    app.extensions["api_key_keyring"] = (configured, fernet)
    return fernet

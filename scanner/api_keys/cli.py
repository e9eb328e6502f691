"""`flask keys ...`: operator commands for the stored VirusTotal keys."""

from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select, update

from ..extensions import db
from . import crypto
from .models import ApiKey

keys_cli = AppGroup("keys", help="VirusTotal API keys at rest.")


@keys_cli.command("generate-encryption-key")
def generate_encryption_key() -> None:
    """Print a new Fernet key, to put first in ENCRYPTION_KEYS."""
    click.echo(Fernet.generate_key().decode())


@keys_cli.command("rotate-encryption")
def rotate_encryption() -> None:
    """Re-encrypt every stored key with the newest key of ENCRYPTION_KEYS.

    Put the new key first in ENCRYPTION_KEYS (keeping the old ones after it), run this, then
    drop the old keys. Each row is rewritten only if nobody changed it meanwhile.
    """
    rotated = failed = 0
    for key_id, ciphertext in db.session.execute(select(ApiKey.id, ApiKey.ciphertext)).all():
        try:
            fresh = crypto.reencrypt(ciphertext)
        except crypto.InvalidToken:
            failed += 1
            click.echo(f"key {key_id}: no configured encryption key opens it", err=True)
            continue
        db.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.ciphertext == ciphertext)
            .values(ciphertext=fresh, updated_at=ApiKey.updated_at)
        )
        db.session.commit()
        rotated += 1
    click.echo(f"re-encrypted {rotated} key(s) with the newest encryption key")
    if failed:
        raise click.ClickException(f"{failed} key(s) could not be decrypted; they were left as they were")


def register_cli(app: Flask) -> None:
    app.cli.add_command(keys_cli)

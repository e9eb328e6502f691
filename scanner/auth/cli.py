"""`flask users ...`: what an operator does that no API caller may (admins are made here only)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .. import audit
from ..errors import AppError
from ..extensions import db
from . import generation, services

users = AppGroup("users", help="Manage accounts and roles.")


def _run(action):
    """Commit what `action` did, or roll back and exit non-zero with the rule it broke."""
    try:
        result = action()
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    if generation.owed():  # this process ends now: it cannot write the new generation later
        click.echo(
            "warning: Redis could not be told of this change; web processes may honour the user's "
            "earlier rights or sessions for up to AUTH_CACHE_TRUST_SECONDS",
            err=True,
        )
    return result


def _audited(action: str, user):
    """An operator's change, in the trail with the account it touched (the actor is the console)."""
    audit.record(action, actor_name="(console)", target_type="user", target_id=user.id, details={"role": user.role})
    return user


@users.command("create-admin")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option(
    "--password",
    envvar="ADMIN_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for when omitted (or read from ADMIN_PASSWORD), so it stays out of shell history.",
)
def create_admin(username: str, email: str, password: str) -> None:
    """Create an administrator account."""
    user = _run(lambda: _audited("admin.create_admin", services.register(username, email, password, role="admin")))
    click.echo(f"Created admin {user.username} ({user.id})")


@users.command("promote")
@click.argument("username")
def promote(username: str) -> None:
    """Give an existing account the admin role."""
    user = _run(lambda: _audited("admin.set_role", services.set_role(username, "admin")))
    click.echo(f"{user.username} is now an admin")


@users.command("demote")
@click.argument("username")
def demote(username: str) -> None:
    """Take the admin role away from an account."""
    user = _run(lambda: _audited("admin.set_role", services.set_role(username, "user")))
    click.echo(f"{user.username} is now a regular user")


@users.command("purge-expired")
def purge_expired() -> None:
    """Delete expired sessions, revocations and sign-in failure windows (safe to run any time)."""
    counts = _run(services.purge_expired)
    click.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))


def register_cli(app: Flask) -> None:
    app.cli.add_command(users)

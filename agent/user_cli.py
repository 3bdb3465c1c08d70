"""`python -m agent user …`: manage password users for sign-in (argon2 hashes in USERS_FILE)."""

from __future__ import annotations

import json
import sys

import typer

from agent.auth import AuthError, add_user, load_users
from agent.config import get_settings

user_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Password users for sign-in."
)


@user_app.command("add")
def add(
    name: str = typer.Argument(..., help="User name to sign in with."),
    password: str = typer.Option(
        None,
        help="At least 8 characters. Asked for (hidden, twice) when not given; read from the "
        "first line of standard input when that is not a terminal.",
    ),
) -> None:
    """Add a user (or set a new password); turns sign-in on for the app."""
    if password is None:
        if sys.stdin.isatty():
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:  # piped: one line, and no "cannot control echo" warning per prompt
            password = sys.stdin.readline().rstrip("\r\n")
    path = get_settings().users_file
    try:
        add_user(path, name, password)
    except (AuthError, OSError, json.JSONDecodeError) as exc:
        typer.echo(f"Could not add {name}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{name} can sign in now (users file: {path}).")


@user_app.command("list")
def list_users() -> None:
    """Print the user names (never the hashes)."""
    try:
        names = sorted(load_users(get_settings()))
    except AuthError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo("\n".join(names) if names else "No users: sign-in is off.")

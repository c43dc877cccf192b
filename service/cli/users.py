"""``wraparound users``: accounts for people who use the web app at /app/ (partners' and clinics' staff).

``users add`` prints the ``otpauth://`` URI that enrols an authenticator app and ten one-time recovery
codes: both are shown once, here, and never again (the hub keeps the secret sealed and the codes hashed).
Refusals exit with code 2 and a one-line reason, never a traceback.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from service.cli._db import fail, transaction
from service.delivery.secrets import SecretKeyMissing, box_for
from service.settings import get_settings
from service.storage import accounts as account_rows
from service.web import accounts

users_app = typer.Typer(help="Accounts for people who sign in to the web app (/app/).", no_args_is_help=True)


def _password(from_stdin: bool, required: bool) -> str | None:
    if from_stdin:
        # One line; the newline an `echo` or a password manager adds is not part of it.
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        if required:
            fail("a new account needs a password: pipe it in with --password-stdin")
        return None
    if not required and not typer.confirm("Set a new password?", default=False):
        return None
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@users_app.command("add")
def add(
    email: Annotated[str, typer.Option("--email", help="The person's email address (their sign-in name).")],
    organization: Annotated[
        str, typer.Option("--organization", help="Organization/ID the person works for.")
    ],
    role: Annotated[str, typer.Option("--role", help="partner or clinic.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
    ] = False,
) -> None:
    """Create an account, or update one (and re-enrol its second factor)."""
    try:
        box = box_for(get_settings())
    except SecretKeyMissing as exc:
        fail(str(exc))
    with transaction(write=False) as conn:
        exists = account_rows.user_by_email(conn, accounts.normalise_email(email)) is not None
    password = _password(password_stdin, required=not exists)
    with transaction() as conn:
        enrolment = accounts.save_user(
            conn,
            box,
            email=email,
            organization=organization,
            role=role,
            password=password,
            now=datetime.now(UTC),
        )
    verb = "created" if enrolment.created else "updated"
    typer.echo(
        f"{verb} {enrolment.role} account {enrolment.email} for Organization/{enrolment.organization_id}"
    )
    typer.echo("Second factor: add this to an authenticator app (or show it as a QR code):")
    typer.echo(f"  {enrolment.otpauth_uri}")
    typer.echo("One-time recovery codes (each signs in once in place of a code; keep them safe):")
    for code in enrolment.recovery_codes:
        typer.echo(f"  {code}")
    if not enrolment.created:
        typer.echo("The previous authenticator enrolment and recovery codes no longer work.")


@users_app.command("list")
def list_() -> None:
    """List accounts (never their secrets)."""
    with transaction(write=False) as conn:
        rows = [
            (row, account_rows.count_recovery_codes(conn, row.id)) for row in account_rows.list_users(conn)
        ]
    if not rows:
        typer.echo("no accounts")
    for row, codes in rows:
        typer.echo(
            f"{row.email}\tOrganization/{row.organization_id}\t{row.role}\t{codes} recovery codes left"
        )


@users_app.command("remove")
def remove(email: Annotated[str, typer.Option("--email", help="The account to remove.")]) -> None:
    """Remove an account and end its sessions."""
    with transaction() as conn:
        removed = accounts.remove_user(conn, email)
    if not removed:
        fail(f"no account {accounts.normalise_email(email)!r}")
    typer.echo(f"removed account {accounts.normalise_email(email)} and ended its sessions")

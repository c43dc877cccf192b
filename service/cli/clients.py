"""``wraparound clients``: register, list and remove SMART Backend Services clients.

Registration is out of band in SMART Backend Services (an operator vets the client and its keys);
this is that operator's tool. Refusals exit with code 2 and a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from service import clients
from service.cli._db import fail, transaction
from service.errors import FhirError
from service.settings import get_settings

clients_app = typer.Typer(help="Register, list and remove API clients.", no_args_is_help=True)


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError:
        fail(f"{path} is not JSON")
    if not isinstance(value, dict):
        fail(f'{path} must hold a JWKS object {{"keys": [...]}}')
    return value


@clients_app.command("add")
def add(
    client_id: Annotated[str, typer.Option("--client-id", help="Client id: its assertions' iss and sub.")],
    organization: Annotated[str, typer.Option("--organization", help="Organization/ID the client acts for.")],
    role: Annotated[str, typer.Option("--role", help="clinic, partner or admin.")],
    scope: Annotated[str, typer.Option("--scope", help='Most it may be granted, e.g. "system/Task.rs".')],
    jwks: Annotated[Path | None, typer.Option("--jwks", help="File with the client's public JWKS.")] = None,
    jwks_url: Annotated[str | None, typer.Option("--jwks-url", help="URL of the client's JWKS.")] = None,
) -> None:
    """Register a client, or replace an existing registration."""
    if (jwks is None) == (jwks_url is None):
        fail("give exactly one of --jwks FILE or --jwks-url URL")
    key_set = _read_jwks(jwks) if jwks is not None else None
    try:
        with transaction() as conn:
            created = clients.register_client(
                conn,
                client_id=client_id,
                organization_id=organization,
                role=role,
                scopes=scope,
                jwks=key_set,
                jwks_url=jwks_url,
                now=datetime.now(UTC),
                allow_private=get_settings().allow_private_endpoints,
            )
    except FhirError as exc:
        fail(exc.diagnostics)
    typer.echo(f"{'created' if created else 'updated'} client {client_id}")


def _keys_text(row: Any) -> str:
    if row.jwks_url:
        return str(row.jwks_url)
    kids = [str(k.get("kid")) for k in (row.jwks or {}).get("keys", [])]
    return "kids " + ",".join(kids)


@clients_app.command("list")
def list_() -> None:
    """List registered clients."""
    with transaction() as conn:
        rows = clients.list_clients(conn)
    if not rows:
        typer.echo("no clients registered")
    for row in rows:
        typer.echo(
            f"{row.client_id}\tOrganization/{row.organization_id}\t{row.role}\t{row.scopes}\t{_keys_text(row)}"
        )


@clients_app.command("remove")
def remove(client_id: Annotated[str, typer.Option("--client-id", help="The client to remove.")]) -> None:
    """Remove a client and revoke its access tokens."""
    with transaction() as conn:
        removed = clients.remove_client(conn, client_id)
    if not removed:
        fail(f"no client {client_id!r}")
    typer.echo(f"removed client {client_id} and revoked its tokens")

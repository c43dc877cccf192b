"""``wraparound worker``, ``deliveries``, ``adapters``, ``endpoints`` and ``secrets``: delivery for operators.

Refusals exit with code 2 and a one-line reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from service.cli._db import fail, transaction
from service.delivery.secrets import SecretBox
from service.settings import get_settings
from service.storage.database import Database

deliveries_app = typer.Typer(help="See and replay deliveries (the outbox).", no_args_is_help=True)
adapters_app = typer.Typer(help="Installed delivery adapters.", no_args_is_help=True)
endpoints_app = typer.Typer(help="Configure an Endpoint's delivery adapter.", no_args_is_help=True)
secrets_app = typer.Typer(help="The key that encrypts delivery secrets at rest.", no_args_is_help=True)


def _box() -> SecretBox:
    from service.delivery.secrets import SecretKeyMissing, box_for

    try:
        return box_for(get_settings())
    except SecretKeyMissing as exc:
        fail(str(exc))


def worker(
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due now, then exit.")] = False,
) -> None:
    """Run a standalone delivery worker (any number may share one PostgreSQL database)."""
    from service.delivery.worker import Worker

    settings = get_settings()
    box = _box()
    db = Database(settings.database_url)
    try:
        db.upgrade()
        delivery = Worker(db, settings, box=box)

        async def main() -> None:
            if once:
                await delivery.run_until_idle()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)  # graceful: finish or release in-flight claims
            await delivery.run(stop)

        asyncio.run(main())
        typer.echo(
            f"worker {delivery.name}: {delivery.delivered} delivered, {delivery.failed} failed attempts"
        )
    except SQLAlchemyError as exc:
        fail(f"database error ({type(exc).__name__}); check WRAPAROUND_DATABASE_URL")
    finally:
        db.dispose()


@deliveries_app.command("list")
def list_deliveries(
    state: Annotated[
        str | None, typer.Option(help="pending, delivered, pull, cancelled or dead (dead letters).")
    ] = None,
    organization: Annotated[str | None, typer.Option(help="Recipient, as Organization/ID or ID.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List deliveries, newest first, as JSON lines (ids and states only)."""
    from service.delivery.operators import describe
    from service.storage import outbox as outbox_sql

    org = organization.removeprefix("Organization/") if organization else None
    with transaction(write=False) as conn:
        rows = outbox_sql.listing(conn, state=state, organization_id=org, limit=limit)
    for row in rows:
        typer.echo(json.dumps(describe(row)))


@deliveries_app.command("show")
def show(delivery_id: Annotated[int, typer.Argument(help="The delivery's id.")]) -> None:
    """One delivery and every attempt at it."""
    from service.delivery.operators import describe
    from service.storage import outbox as outbox_sql

    with transaction(write=False) as conn:
        row = outbox_sql.get(conn, delivery_id)
        if row is None:
            fail(f"delivery {delivery_id} is not known")
        attempts = outbox_sql.attempts_of(conn, delivery_id)
    shown = describe(row)
    shown["attempt"] = [
        {
            "attempt": a["attempt"],
            "started": a["started_at"].isoformat(),
            "durationMs": a["duration_ms"],
            "outcome": a["outcome"],
            "status": a["status_code"],
            "error": a["error"],
            "worker": a["worker"],
        }
        for a in attempts
    ]
    typer.echo(json.dumps(shown, indent=2))


@deliveries_app.command("retry")
def retry(
    delivery_id: Annotated[int | None, typer.Argument(help="A dead letter's id.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Replay every dead letter.")] = False,
) -> None:
    """Replay a dead letter (or all of them) with a fresh attempt budget."""
    from service.delivery.operators import replay
    from service.storage import outbox as outbox_sql

    if (delivery_id is None) == (not all_dead):
        fail("give a delivery id or --all-dead")
    now = datetime.now(UTC)
    with transaction() as conn:
        ids = (
            [delivery_id]
            if delivery_id is not None
            else [r.id for r in outbox_sql.listing(conn, state="dead", limit=100_000)]
        )
        for row_id in ids:
            replay(conn, row_id, now)
    typer.echo(f"{len(ids)} delivery(ies) queued again")


@adapters_app.command("list")
def list_adapters() -> None:
    """The delivery adapters installed (entry-point group wraparound.adapters)."""
    from adapters.registry import discover

    registry = discover()
    for adapter in registry.adapters:
        typer.echo(f"{adapter.slug:16} {adapter.connection_type}  {adapter.description}")
    for name, problem in registry.broken:
        typer.echo(f"{name:16} BROKEN: {problem}", err=True)


@endpoints_app.command("configure")
def configure(
    endpoint_id: Annotated[str, typer.Option("--endpoint-id", help="The Endpoint's id (or Endpoint/ID).")],
    config_file: Annotated[
        Path, typer.Option("--config", help="JSON configuration for the Endpoint's adapter ('-' for stdin).")
    ],
) -> None:
    """Set an Endpoint's adapter configuration (validated by the adapter; stored encrypted)."""
    from service.delivery.config import masked
    from service.delivery.operators import configure as store_config

    try:
        text = sys.stdin.read() if str(config_file) == "-" else config_file.read_text(encoding="utf-8")
        raw = json.loads(text)
    except OSError as exc:
        fail(f"cannot read {config_file}: {exc.strerror or exc}")
    except ValueError:
        fail(f"{config_file} is not JSON")
    box = _box()
    with transaction() as conn:
        adapter, config = store_config(
            conn, endpoint_id.removeprefix("Endpoint/"), raw, box, datetime.now(UTC)
        )
    typer.echo(
        f"Endpoint/{endpoint_id.removeprefix('Endpoint/')} ({adapter.slug}): {json.dumps(masked(config))}"
    )


@endpoints_app.command("show")
def show_endpoint(
    endpoint_id: Annotated[str, typer.Option("--endpoint-id", help="The Endpoint's id (or Endpoint/ID).")],
) -> None:
    """An Endpoint's adapter configuration, secrets masked."""
    from service.delivery.config import load, masked
    from service.delivery.operators import endpoint_and_adapter

    box = _box()
    with transaction(write=False) as conn:
        endpoint, adapter = endpoint_and_adapter(conn, endpoint_id.removeprefix("Endpoint/"))
        config = load(conn, endpoint.id, adapter, box)
    typer.echo(f"Endpoint/{endpoint.id} ({adapter.slug}): {json.dumps(masked(config))}")


@secrets_app.command("generate-key")
def generate_key() -> None:
    """Print a new key for WRAPAROUND_SECRET_KEY (keep it in your secret store, not in the repository)."""
    from service.delivery.secrets import generate_key as make

    typer.echo(make())

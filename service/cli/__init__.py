"""The ``wraparound`` command line (Typer)."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.clients import clients_app
from service.cli.delivery import adapters_app, deliveries_app, endpoints_app, secrets_app, worker
from service.cli.directory import demo, directory_app
from service.cli.users import users_app
from service.settings import get_settings

app = typer.Typer(help="Wraparound FHIR referral hub.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(directory_app, name="directory")
app.add_typer(clients_app, name="clients")
app.add_typer(users_app, name="users")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(adapters_app, name="adapters")
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(secrets_app, name="secrets")
app.command("demo")(demo)
app.command("worker")(worker)


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default WRAPAROUND_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default WRAPAROUND_PORT or 8000)."),
    worker: bool = typer.Option(
        True,
        "--worker/--no-worker",
        help="Run a delivery worker alongside (turn it off when `wraparound worker` runs separately).",
    ),
    workers: int = typer.Option(
        None, "--workers", min=1, help="API processes (default WRAPAROUND_WORKERS or 1)."
    ),
) -> None:
    """Run the FHIR API and, by default, one delivery worker with it."""
    from service.api.ratelimit import parse
    from service.delivery.secrets import SecretKeyMissing, box_for
    from service.serving import run_server, settings_for

    settings = settings_for(host, port)
    processes = workers or settings.workers
    try:
        box_for(settings)
        parse(settings.rate_limit)
        parse(settings.token_rate_limit)
    except (SecretKeyMissing, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if processes > 1:
        from service.server.processes import run_workers

        # One delivery worker, not one per API process: it runs in the supervising process.
        where = "one, in the supervising process" if worker else "off (--no-worker)"
        typer.echo(f"wraparound: {processes} API processes; delivery worker: {where}", err=True)
        run_workers(settings, processes, delivery=worker)
        return
    from service.app import create_app

    run_server(create_app(settings, worker=worker), settings)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations."""
    from service.storage.database import Database

    db = Database(get_settings().database_url)
    db.upgrade()
    typer.echo("database is at the current migration")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree (CI)."""
    from service.storage import migrate
    from service.storage.database import Database

    db = Database(get_settings().database_url)
    db.upgrade()
    diff = migrate.pending_model_changes(db.engine)
    if diff:
        typer.echo(f"models and migrations differ: {diff}", err=True)
        raise typer.Exit(1)
    typer.echo("migrations match the models")


@app.command()
def openapi(
    check: bool = typer.Option(False, "--check", help="Fail when the file differs from the app (CI)."),
    output: Path = typer.Option(Path("openapi/openapi.json"), "--output", help="Where the document lives."),
) -> None:
    """Write the OpenAPI document generated from the app (or, with --check, verify it)."""
    from service import openapi_export

    if check:
        if openapi_export.check(output).changed:
            typer.echo(f"{output} is out of date: run `wraparound openapi` (make openapi)", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} matches the app")
        return
    outcome = openapi_export.write(output)
    typer.echo(f"{output} {'written' if outcome.changed else 'unchanged'}")

"""The ``wraparound`` command line (Typer)."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.clients import clients_app
from service.cli.delivery import adapters_app, deliveries_app, endpoints_app, secrets_app, worker
from service.cli.directory import demo, directory_app
from service.settings import get_settings

app = typer.Typer(help="Wraparound FHIR referral hub.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(directory_app, name="directory")
app.add_typer(clients_app, name="clients")
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
        help="Run an in-process delivery worker (turn it off when `wraparound worker` runs separately).",
    ),
) -> None:
    """Run the FHIR API and, by default, a delivery worker in the same process."""
    from service.app import create_app
    from service.delivery.secrets import SecretKeyMissing
    from service.serving import run_server, settings_for

    settings = settings_for(host, port)
    try:
        application = create_app(settings, worker=worker)
    except SecretKeyMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    run_server(application, settings)


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

"""``wraparound directory load FILE`` and ``wraparound demo``.

Refusals exit with code 2 and a one-line reason, never a traceback (as ``wraparound clients`` does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from service.demo import DEFAULT_KEYS_DIR
from service.errors import FhirError
from service.settings import get_settings
from service.storage.database import Database

directory_app = typer.Typer(no_args_is_help=True)


@directory_app.callback()
def _directory() -> None:
    """The directory of organisations and services."""
    # A callback keeps `directory` a command group even while `load` is its only command.


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _read_bundle(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError:
        _fail(f"{path} is not JSON")


@directory_app.command("load")
def load(
    file: Annotated[
        Path, typer.Argument(help="A Bundle of Organization, HealthcareService, Location, Endpoint.")
    ],
) -> None:
    """Load a directory Bundle idempotently: entries are matched by identifier, unchanged ones skipped."""
    from service.directory import load_directory
    from service.wiring import wire

    bundle = _read_bundle(file)
    wire()  # the same validation rules and hooks as the API
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        db.upgrade()
        report = load_directory(
            db,
            bundle,
            base_url=settings.fhir_base(),
            allow_private_endpoints=settings.allow_private_endpoints,
        )
    except FhirError as exc:
        _fail(exc.diagnostics)
    except SQLAlchemyError as exc:
        # The message can hold the URL (with a password) or SQL: name the failure, not its text.
        _fail(f"database error ({type(exc).__name__}); check WRAPAROUND_DATABASE_URL")
    finally:
        db.dispose()
    typer.echo(f"directory loaded from {file}: {report.summary()}")


def demo(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default WRAPAROUND_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default WRAPAROUND_PORT or 8000).")] = None,
    keys_dir: Annotated[
        Path, typer.Option("--keys-dir", help="Folder for the demo clients' private keys.")
    ] = DEFAULT_KEYS_DIR,
) -> None:
    """Start a ready-to-try hub: demo directory, demo clients with fresh keys, and a printed walkthrough."""
    from service.app import create_app
    from service.bootstrap import load_definitions
    from service.delivery.secrets import box_for
    from service.demo import people_text, setup_demo
    from service.demo_walkthrough import walkthrough
    from service.serving import run_server, settings_for
    from service.wiring import wire

    settings = settings_for(host, port)
    settings.development = True  # the demo keeps its secret key in a local file, like `make run`
    wire()
    db = Database(settings.database_url)
    try:
        db.upgrade()
        load_definitions(db)
        setup = setup_demo(db, fhir_base=settings.fhir_base(), keys_dir=keys_dir, box=box_for(settings))
    except FhirError as exc:
        db.dispose()
        _fail(exc.diagnostics)
    except SQLAlchemyError as exc:
        db.dispose()
        _fail(f"database error ({type(exc).__name__}); check WRAPAROUND_DATABASE_URL")
    except OSError as exc:
        db.dispose()
        _fail(f"cannot write the demo keys in {keys_dir}: {exc.strerror or exc}")
    typer.echo(walkthrough(setup))
    typer.echo(people_text(setup))
    application = create_app(settings, database=db, worker=True)  # as `wraparound serve` does
    try:
        run_server(application, settings)
    finally:
        db.dispose()

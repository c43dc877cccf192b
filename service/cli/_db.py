"""What every command group shares: a one-line refusal (exit 2) and one database transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from service.errors import FhirError
from service.settings import get_settings
from service.storage.database import Database


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def transaction(write: bool = True) -> Iterator[Connection]:
    """Migrate, then one transaction; refusals (a rule, the database) end the command with exit 2."""
    db = Database(get_settings().database_url)
    try:
        db.upgrade()
        with db.transaction(write=write) as conn:
            yield conn
    except SQLAlchemyError as exc:
        # The message can hold the URL (with a password) or SQL: name the failure, not its text.
        fail(f"database error ({type(exc).__name__}); check WRAPAROUND_DATABASE_URL")
    except FhirError as exc:
        fail(exc.diagnostics)
    finally:
        db.dispose()

"""The database handle: one engine per process, one transaction per request or job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from service.storage import migrate
from service.storage.engine import make_engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A transaction committed on normal exit and rolled back on any exception."""
        with self.engine.connect() as conn:
            if write and self.engine.dialect.name == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def upgrade(self) -> None:
        migrate.upgrade(self.engine)

    def ready(self) -> tuple[bool, str]:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # readiness reports any database failure
            return False, f"database unreachable: {type(exc).__name__}"
        if not migrate.is_current(self.engine):
            return False, "database schema is not at the current migration"
        return True, "ok"

    def dispose(self) -> None:
        self.engine.dispose()

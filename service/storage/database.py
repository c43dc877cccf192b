"""The database handle: one engine per process, one transaction per request or job."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from service.storage import migrate
from service.storage.engine import make_engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.dialect: str = self.engine.dialect.name  # "sqlite" or "postgresql"
        # SQLite allows one writer; queueing writers on a process lock is fairer and far
        # cheaper than letting them spin in SQLite's busy handler (sleep-and-retry).
        self._sqlite_writer = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        self._postgres = self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A transaction committed on normal exit and rolled back on any exception."""
        lock = self._sqlite_writer if write else None
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.connect() as conn:
                if lock is not None:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                elif not write and self._postgres:
                    # BEGIN READ ONLY: a write slipped into a read transaction fails loudly rather
                    # than commit unserialised and unaudited. psycopg folds it into its BEGIN.
                    conn = conn.execution_options(postgresql_readonly=True)
                with conn.begin():
                    yield conn
        finally:
            if lock is not None:
                lock.release()

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

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
        # SQLite read transactions that reuse their thread's Connection (``transaction(kept=True)``).
        self._kept = threading.local()
        self._kept_all: list[tuple[threading.Thread, Connection]] = []
        self._kept_lock = threading.Lock()

    @contextmanager
    def transaction(self, *, write: bool = True, kept: bool = False) -> Iterator[Connection]:
        """A transaction committed on normal exit and rolled back on any exception.

        ``kept``: a SQLite read on a Connection this thread keeps between transactions, for the one
        thread that reads most (the event loop's reads by id, api/hotpath.py): checking a connection
        out of the pool and back in cost a loaded read about 10 % of its CPU. A WAL reader between
        transactions holds no snapshot and blocks no checkpoint. Elsewhere a pooled one.
        """
        if kept and not write and self._sqlite_writer is not None:
            with self._kept_connection().begin() as transaction:
                yield transaction.connection
            return
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

    def _kept_connection(self) -> Connection:
        conn: Connection | None = getattr(self._kept, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()  # invalidated by an error: back to the pool, to be replaced
            with self._kept_lock:
                # A thread that has ended (a test client's portal, say) gives its connection back;
                # one closed above drops out of the list.
                for _thread, old in [(t, c) for t, c in self._kept_all if not t.is_alive()]:
                    old.close()
                self._kept_all = [(t, c) for t, c in self._kept_all if t.is_alive() and not c.closed]
                conn = self._kept.conn = self.engine.connect()
                self._kept_all.append((threading.current_thread(), conn))
        return conn

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
        with self._kept_lock:
            kept, self._kept_all = self._kept_all, []
        for _thread, conn in kept:
            conn.close()
        self.engine.dispose()

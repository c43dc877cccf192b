"""The database handle: one engine per process (two on PostgreSQL: writes, and reads in autocommit on
read-only sessions, ADR 0021), one transaction per request or job."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from service.storage import driver, migrate
from service.storage.engine import make_engine
from service.storage.errors import is_contention

# The kept writer's commits between checkpoints (``write_if_free``): about a thousand AuditEvents
# under load, or 64 creates, a few MB of WAL.
CHECKPOINT_EVERY = 64


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.dialect: str = self.engine.dialect.name  # "sqlite" or "postgresql"
        # SQLite allows one writer; queueing writers on a process lock is fairer and far
        # cheaper than letting them spin in SQLite's busy handler (sleep-and-retry).
        self._sqlite_writer = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        self._postgres = self.engine.dialect.name == "postgresql"
        # PostgreSQL reads: autocommit on read-only sessions, one round trip a statement (ADR 0021).
        self._reads: Engine | None = make_engine(url, reads=True) if self._postgres else None
        # SQLite Connections a thread keeps between transactions: a reader and a writer
        # (``transaction(kept=True)``; the writer through ``write_if_free``, for the event loop's
        # audit commits and writes).
        self._kept = threading.local()
        self._kept_all: list[tuple[threading.Thread, Connection]] = []
        self._kept_lock = threading.Lock()
        # Commits on the kept writer Connection (which never checkpoints), and who is told when a
        # checkpoint is due (``on_checkpoint_due``).
        self._kept_commits = 0
        self._checkpoint_due: Callable[[], None] | None = None

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine requests use, for listeners that must see every statement (bench/statements.py)."""
        return (self.engine,) if self._reads is None else (self.engine, self._reads)

    @contextmanager
    def transaction(self, *, write: bool = True, kept: bool = False) -> Iterator[Connection]:
        """A transaction committed on normal exit and rolled back on any exception.

        ``kept``: on SQLite, a Connection this thread keeps between transactions, for the event loop
        (api/hotpath.py). A read uses the kept reader: checking a connection out of the pool and back
        in cost a loaded read about 10 % of its CPU. It runs in autocommit, as PostgreSQL's reads do
        (ADR 0021, ADR 0023): each driver statement (``storage/driver.py``) is its own read
        transaction, so between them it holds no snapshot and blocks no checkpoint, and
        ``query_only`` makes a write fail. A Core statement begins a transaction as usual, which is
        rolled back at the end. A write uses ``write_if_free``, and raises ``WriterBusy``, with
        nothing begun, when the write lock is not free this instant (ADR 0020). Elsewhere a pooled
        Connection: on PostgreSQL a read's from the reads engine (ADR 0021).
        """
        if kept and self._sqlite_writer is not None:
            if write:
                with self.write_if_free() as free:
                    if free is None:
                        raise WriterBusy("the SQLite write lock is held")
                    yield free
                return
            reader = self._kept_connection()
            try:
                yield reader
            finally:
                if reader.in_transaction():  # begun by a Core statement (autobegin)
                    reader.rollback()
            return
        lock = self._sqlite_writer if write else None
        if lock is not None:
            lock.acquire()
        try:
            engine = self._reads if (not write and self._reads is not None) else self.engine
            with engine.connect() as conn:
                if lock is not None:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def write_if_free(self) -> Iterator[Connection | None]:
        """SQLite: a write transaction, if the write lock is free this instant; else ``None``, with
        nothing begun, and the caller goes elsewhere instead of waiting. For the event loop's audit
        commits (audit/writer.py, ADR 0018) and writes (ADR 0020), which must never wait for another
        writer: here, in this process, or in another. Its Connection is kept by the thread, with no
        busy wait: every ``CHECKPOINT_EVERY`` commits on it, the hook given to ``on_checkpoint_due``
        is called, to have ``checkpoint`` run off the loop. Under steady load the loop commits again
        before one of those copies the last frames, and SQLite starts the WAL again from its
        beginning only after a checkpoint that copied every frame: alone, they let the WAL grow by
        every commit. So the Connection keeps the automatic checkpoint every Connection has
        (``engine.WAL_AUTOCHECKPOINT_PAGES``): past it, its commit copies what is left, with the lock
        held, and the next write restarts the WAL (ADR 0026). On PostgreSQL always None."""
        lock = self._sqlite_writer
        if lock is None or not lock.acquire(blocking=False):
            yield None
            return
        try:
            conn = self._kept_connection(writer=True)
            try:
                transaction = conn.begin()
            except OperationalError as exc:
                if not is_contention(exc):  # another process holds SQLite's write lock
                    raise
                transaction = None
            if transaction is None:
                yield None
                return
            with transaction:
                yield conn
            self._kept_commits += 1  # under the write lock
            if self._kept_commits % CHECKPOINT_EVERY == 0 and self._checkpoint_due is not None:
                self._checkpoint_due()
        finally:
            lock.release()

    def on_checkpoint_due(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` every ``CHECKPOINT_EVERY`` commits made through ``write_if_free``: it must
        return at once and have ``checkpoint`` run elsewhere (the audit writer's thread does)."""
        self._checkpoint_due = hook

    def checkpoint(self) -> None:
        """SQLite: copy what the WAL holds into the database file, without blocking any reader or
        writer (PASSIVE); what the loop's commits leave there (``write_if_free``) goes this way."""
        if self._sqlite_writer is None:
            return
        with self.engine.connect() as conn:
            conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]

    def _kept_connection(self, *, writer: bool = False) -> Connection:
        attr = "writer" if writer else "conn"
        conn: Connection | None = getattr(self._kept, attr, None)
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()  # invalidated by an error: back to the pool, to be replaced
            with self._kept_lock:
                # A thread that has ended (a test client's portal, say) gives its connections back;
                # one closed above drops out of the list.
                for _thread, old in [(t, c) for t, c in self._kept_all if not t.is_alive()]:
                    _release(old)
                self._kept_all = [(t, c) for t, c in self._kept_all if t.is_alive() and not c.closed]
                conn = self.engine.connect()
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                if writer:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                    dbapi.execute("PRAGMA busy_timeout=0")
                else:
                    conn = conn.execution_options(**{driver.AUTOCOMMIT_READS: True})
                    dbapi.execute("PRAGMA query_only=1")
                conn.info["kept"] = True  # never pooled again (``_release``): its PRAGMAs stay with it
                setattr(self._kept, attr, conn)
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
            _release(conn)
        self.engine.dispose()
        if self._reads is not None:
            self._reads.dispose()


class WriterBusy(RuntimeError):
    """``transaction(write=True, kept=True)``: the write lock was not free; nothing was begun."""


def _release(conn: Connection) -> None:
    """Give a kept Connection back: discarded, not pooled, so that its PRAGMAs (the reader's
    ``query_only``, the writer's no busy wait) never reach another user
    of the pool."""
    if conn.info.get("kept") and not conn.closed and not conn.invalidated:
        conn.invalidate()
    conn.close()

"""Database.transaction(kept=True): a SQLite read on the thread's own kept Connection, and a write on
its kept writer when the write lock is free."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from service.storage import driver
from service.storage import engine as engine_module
from service.storage.database import Database, WriterBusy


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'kept.db'}")
    yield database
    database.dispose()


def _read(db: Database) -> Connection:
    with db.transaction(write=False, kept=True) as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        return conn


def test_a_thread_reads_on_one_connection_and_another_thread_on_its_own(db: Database) -> None:
    first, again = _read(db), _read(db)
    assert first is again
    other: list[Connection] = []
    thread = threading.Thread(target=lambda: other.append(_read(db)))
    thread.start()
    thread.join()
    assert other[0] is not first


def test_an_ended_threads_connection_goes_back_when_another_thread_takes_one(db: Database) -> None:
    ended: list[Connection] = []
    thread = threading.Thread(target=lambda: ended.append(_read(db)))
    thread.start()
    thread.join()
    _read(db)
    assert ended[0].closed


def test_an_invalidated_connection_is_replaced(db: Database) -> None:
    first = _read(db)
    first.invalidate()
    assert _read(db) is not first


def test_the_transaction_ends_with_the_block_and_a_failure_rolls_back(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction(write=False, kept=True) as conn:
        raise RuntimeError("inside")
    assert not conn.in_transaction()
    assert _read(db) is conn


def test_a_write_uses_the_kept_writer_only_when_the_lock_is_free(db: Database, tmp_path: Path) -> None:
    """ADR 0020: the kept writer (no busy wait), or WriterBusy with nothing begun; never the reader."""
    with db.transaction(write=True, kept=True) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    assert not conn.closed  # kept, not given back to the pool
    assert conn is not _read(db)
    with db.transaction(write=True, kept=True) as again:
        again.execute(text("INSERT INTO t VALUES (1)"))
    assert again is conn

    other = sqlite3.connect(tmp_path / "kept.db", isolation_level=None)  # another process, for locks
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WriterBusy), db.transaction(write=True, kept=True):
            pytest.fail("the block must not run without the lock")
    finally:
        other.execute("ROLLBACK")
        other.close()
    with db.transaction(write=False) as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 1


def test_the_kept_writers_own_commits_keep_the_wal_from_growing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADR 0026: under steady writes on the kept writer, with reads between them, nothing else
    checkpoints. Its own commits must: a checkpoint must catch up with the last commit for the next
    write to start the WAL again from its beginning, and without that the file grew by every commit."""
    monkeypatch.setattr(engine_module, "WAL_AUTOCHECKPOINT_PAGES", 20)  # before its first connection
    with db.transaction(write=True, kept=True) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB)"))
        page = int(conn.execute(text("PRAGMA page_size")).scalar_one())
    wal, largest = tmp_path / "kept.db-wal", 0
    for _ in range(200):  # about four pages a commit: 800 frames, were nothing checkpointed
        with db.transaction(write=True, kept=True) as conn:
            conn.execute(text("INSERT INTO t (payload) VALUES (randomblob(10000))"))
        _read(db)
        largest = max(largest, wal.stat().st_size)
    # The threshold, plus the commit that crossed it; a frame is a 24-byte header and a page.
    assert largest <= 32 + (20 + 8) * (24 + page)
    with db.transaction(write=False) as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 200


def test_a_write_without_kept_takes_a_pooled_connection(db: Database) -> None:
    with db.transaction(write=True) as conn:
        pass
    assert conn.closed  # a pooled connection, given back


def test_dispose_closes_them(db: Database) -> None:
    conn = _read(db)
    db.dispose()
    assert conn.closed


def _table_with_a_row(db: Database) -> None:
    with db.transaction(write=True) as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))


def test_a_driver_read_on_the_kept_reader_opens_no_transaction(db: Database) -> None:
    """ADR 0023: no BEGIN and no COMMIT; the statement is its own read transaction."""
    _table_with_a_row(db)
    with db.transaction(write=False, kept=True) as conn:
        assert driver.rows(conn, "SELECT n FROM t", ()) == [(1,)]
        assert not conn.in_transaction()
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        assert not dbapi.in_transaction
        with db.transaction(write=True) as writer:  # a commit in between is seen at once
            writer.execute(text("INSERT INTO t VALUES (2)"))
        assert driver.rows(conn, "SELECT count(*) FROM t", ()) == [(2,)]


def test_a_core_statement_on_the_kept_reader_is_rolled_back_at_the_end(db: Database) -> None:
    _table_with_a_row(db)
    with db.transaction(write=False, kept=True) as conn:
        assert conn.execute(text("SELECT n FROM t")).scalar_one() == 1
        assert conn.in_transaction()  # autobegun, as SQLAlchemy does
    assert not conn.in_transaction()
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    assert not dbapi.in_transaction


def test_a_write_on_the_kept_reader_fails_and_changes_nothing(db: Database) -> None:
    _table_with_a_row(db)
    with pytest.raises(OperationalError, match="readonly"), db.transaction(write=False, kept=True) as conn:
        driver.rows(conn, "INSERT INTO t VALUES (3)", ())
    with pytest.raises(OperationalError, match="readonly"), db.transaction(write=False, kept=True) as conn:
        conn.execute(text("DELETE FROM t"))
    with db.transaction(write=False) as reader:
        assert reader.execute(text("SELECT n FROM t")).scalars().all() == [1]


def test_the_kept_readers_pragma_never_reaches_the_pool(db: Database) -> None:
    """An ended thread's reader is discarded, not pooled: its ``query_only`` would fail a writer."""
    _table_with_a_row(db)
    ended: list[Any] = []
    thread = threading.Thread(target=lambda: ended.append(_read(db).connection.dbapi_connection))
    thread.start()
    thread.join()
    _read(db)  # gives the ended thread's back
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        ended[0].execute("SELECT 1")
    with db.transaction(write=True) as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))

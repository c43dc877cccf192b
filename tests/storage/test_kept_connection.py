"""Database.transaction(kept=True): a SQLite read on the thread's own kept Connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from service.storage.database import Database


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


def test_writes_never_keep_one(db: Database) -> None:
    with db.transaction(write=True, kept=True) as conn:
        pass
    assert conn.closed  # a pooled connection, given back


def test_dispose_closes_them(db: Database) -> None:
    conn = _read(db)
    db.dispose()
    assert conn.closed

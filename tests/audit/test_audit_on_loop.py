"""On SQLite, coroutines' AuditEvents are committed on their own event loop (ADR 0018).

The events of the same few turns of the loop share one write transaction, run there if the write
lock is free at that instant; if another writer holds it (in this process or another), the batch goes to the
writer's thread and the loop does not wait. The loop's commits leave checkpoints to the thread, and
its Connection's settings never reach the pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import make_url, select

from service.audit import writer as writer_module
from service.audit.writer import AuditWriter
from service.storage import audit_index
from service.storage import database as database_module
from service.storage.database import Database
from service.storage.resources import R
from tests.audit._audit_faults import read_event, wait_for, write_commits

pytestmark = pytest.mark.usefixtures("sqlite_only")


@pytest.fixture
def sqlite_only(database: Database) -> None:
    if database.dialect != "sqlite":
        pytest.skip("SQLite only: on PostgreSQL every batch goes to the writer's thread (CI runs both)")


@pytest.fixture
def writer(clean_database: Database) -> Iterator[AuditWriter]:
    writer = AuditWriter(clean_database)
    yield writer
    writer.close(timeout=30)


def _durable(database: Database, ids: list[str]) -> set[str]:
    entity = audit_index.source("entity")
    with database.transaction(write=False) as conn:
        rows = conn.execute(
            select(entity.c.target_id)
            .join(R, R.c.rid == entity.c.rid)
            .where(entity.c.param == "entity", entity.c.target_id.in_(ids))
        ).all()
    return {row.target_id for row in rows}


def test_one_turn_of_the_loop_is_one_commit_on_the_loop(
    clean_database: Database, writer: AuditWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"turn-{n}" for n in range(8)]
    threads: list[str] = []

    async def main() -> list[object]:
        return await asyncio.gather(*(writer.commit([read_event(i)]) for i in ids), return_exceptions=True)

    original = clean_database.write_if_free

    def spied() -> Any:
        threads.append(threading.current_thread().name)
        return original()

    monkeypatch.setattr(clean_database, "write_if_free", spied)
    with write_commits(clean_database.engine) as commits:
        outcomes = asyncio.run(main())
    assert outcomes == [None] * len(ids)
    assert commits == [1]  # eight requests, one write transaction
    assert threads == ["MainThread"]  # committed on the loop's own thread
    assert writer._thread is None  # the writer's thread was never needed
    assert _durable(clean_database, ids) == set(ids)


def _commit_in_turns(writer: AuditWriter, name: str, count: int) -> list[object]:
    """``count`` coroutines that reach ``commit`` one turn of the loop after another."""

    async def one(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)  # one turn of the loop each
        await writer.commit([read_event(f"{name}-{n}")])

    async def main() -> list[object]:
        return await asyncio.gather(*(one(n) for n in range(count)), return_exceptions=True)

    return asyncio.run(main())


def test_events_arriving_in_the_next_turns_join_the_batch(
    clean_database: Database, writer: AuditWriter
) -> None:
    """Under load requests reach ``commit`` a turn or two apart: they share a commit."""
    count = writer_module.GATHER_TURNS - 1
    with write_commits(clean_database.engine) as commits:
        outcomes = _commit_in_turns(writer, "later", count)
    assert outcomes == [None] * count
    assert commits == [1]
    ids = [f"later-{n}" for n in range(count)]
    assert _durable(clean_database, ids) == set(ids)


def test_a_batch_waits_no_more_than_its_turns(clean_database: Database, writer: AuditWriter) -> None:
    """Arrivals that go on turn after turn do not hold a batch open: it commits after GATHER_TURNS."""
    count = 3 * writer_module.GATHER_TURNS
    with write_commits(clean_database.engine) as commits:
        outcomes = _commit_in_turns(writer, "steady", count)
    assert outcomes == [None] * count
    assert commits[0] >= count // writer_module.GATHER_TURNS  # every few turns, not once at the end
    ids = [f"steady-{n}" for n in range(count)]
    assert _durable(clean_database, ids) == set(ids)


def test_a_full_batch_commits_without_waiting(clean_database: Database) -> None:
    writer = AuditWriter(clean_database, max_batch=2)
    try:
        with write_commits(clean_database.engine) as commits:
            outcomes = _commit_in_turns(writer, "full", 4)  # within GATHER_TURNS: one batch but for the cap
    finally:
        writer.close(timeout=30)
    assert outcomes == [None] * 4
    assert commits == [2]


def test_a_write_lock_held_by_another_process_sends_the_batch_to_the_thread(
    clean_database: Database, writer: AuditWriter
) -> None:
    """The loop never waits for SQLite's lock: the batch goes to the thread, which waits for it."""
    path = make_url(clean_database.url).database
    assert path
    other = sqlite3.connect(path, isolation_level=None, timeout=30)  # another process, as far as locks go
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def main() -> str:
        nonlocal ticks
        task = asyncio.create_task(writer.commit([read_event("held-elsewhere")]))
        while (writer._thread is None or writer.queued() > 0 or ticks < 20) and ticks < 2000:
            await asyncio.sleep(0.005)  # the loop keeps turning while the lock is held
            ticks += 1
            assert not task.done()  # nothing is answered before its commit (nor failed)
        other.execute("COMMIT")
        await task
        return "committed"

    try:
        assert asyncio.run(main()) == "committed"
    finally:
        other.close()
    assert ticks >= 20
    assert _durable(clean_database, ["held-elsewhere"]) == {"held-elsewhere"}


def test_the_thread_checkpoints_after_the_loops_commits(
    clean_database: Database, writer: AuditWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "CHECKPOINT_EVERY", 2)
    checkpoints: list[str] = []
    original = clean_database.checkpoint

    def spied() -> None:
        checkpoints.append(threading.current_thread().name)
        original()

    monkeypatch.setattr(clean_database, "checkpoint", spied)

    async def turns(first: int) -> None:
        for n in range(first, first + 2):  # two turns, two commits on the loop
            await writer.commit([read_event(f"cp-{n}")])

    asyncio.run(turns(0))
    wait_for(lambda: len(checkpoints) == 1, "a checkpoint after two commits")
    asyncio.run(turns(2))
    wait_for(lambda: len(checkpoints) == 2, "another after two more")
    assert checkpoints == ["audit-writer", "audit-writer"]


def test_the_loops_connection_settings_never_reach_the_pool(clean_database: Database) -> None:
    def busy_timeout(conn: Any) -> int:
        return int(conn.connection.dbapi_connection.execute("PRAGMA busy_timeout").fetchone()[0])

    def in_a_thread() -> None:
        with clean_database.write_if_free() as conn:
            assert conn is not None
            assert busy_timeout(conn) == 0  # never waits for a lock

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    # The thread has ended: its Connection is discarded, not pooled, when the next one is kept.
    with clean_database.write_if_free() as conn:
        assert conn is not None
    pooled = [clean_database.engine.connect() for _ in range(3)]
    try:
        assert {busy_timeout(c) for c in pooled} == {30000}
    finally:
        for c in pooled:
            c.close()

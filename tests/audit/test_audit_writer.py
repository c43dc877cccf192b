"""The audit writer on the real test database (SQLite or PostgreSQL): group commit and its failures."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from service.audit.writer import AuditWriter, WriterClosed
from service.errors import ServiceUnavailable
from service.storage import audit_index
from service.storage.database import Database
from service.storage.resources import R, ResourceStore
from tests.audit._audit_faults import read_event, refused_audit, wait_for, write_commits, writes_held

ENTITY = audit_index.source("entity")  # wherever an event's entity rows are stored


@pytest.fixture
def writer(clean_database: Database) -> Iterator[AuditWriter]:
    writer = AuditWriter(clean_database)
    yield writer
    writer.close(timeout=30)


def _audited(database: Database, patient_ids: list[str]) -> dict[str, str]:
    """patient id -> meta.lastUpdated of the AuditEvent found for it through the entity index."""
    with database.transaction(write=False) as conn:
        rows = conn.execute(
            select(ENTITY.c.target_id, R.c.content)
            .join(R, R.c.rid == ENTITY.c.rid)
            .where(
                ENTITY.c.resource_type == "AuditEvent",
                ENTITY.c.param == "entity",
                ENTITY.c.target_id.in_(patient_ids),
            )
        ).all()
    return {row.target_id: row.content["meta"]["lastUpdated"] for row in rows}


def _recording_threads(writer: AuditWriter, ids: list[str]) -> tuple[list[threading.Thread], list[object]]:
    outcomes: list[object] = []

    def record(patient_id: str) -> None:
        try:
            writer.record([read_event(patient_id)])
            outcomes.append("committed")
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=record, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    return threads, outcomes


def test_requests_queued_behind_a_batch_share_the_next_commit(
    clean_database: Database, writer: AuditWriter
) -> None:
    ids = [f"group-{n}" for n in range(8)]
    with write_commits(clean_database.engine) as commits:
        with writes_held(clean_database):
            plug = writer.submit([read_event("plug")])
            # The writer has taken the plug into a batch, which waits for the held write lock.
            wait_for(lambda: writer.queued() == 0, "the writer to take the first batch")
            threads, outcomes = _recording_threads(writer, ids)
            wait_for(lambda: writer.queued() == len(ids), "every request to queue")
            assert not plug.done()
            assert outcomes == []  # nobody has been answered: nothing is committed yet
        for thread in threads:
            thread.join(30)
        plug.result(30)
    assert outcomes == ["committed"] * len(ids)
    assert commits == [3]  # the held transaction, the plug's batch, then one batch for all eight
    found = _audited(clean_database, [*ids, "plug"])
    assert set(found) == {*ids, "plug"}
    assert len({found[i] for i in ids}) == 1  # one batch: one commit time


def test_a_batch_that_cannot_commit_fails_every_request_in_it(
    clean_database: Database, writer: AuditWriter
) -> None:
    ids = [f"refused-{n}" for n in range(4)]
    with refused_audit(clean_database):
        threads, outcomes = _recording_threads(writer, ids)
        for thread in threads:
            thread.join(30)
    assert len(outcomes) == len(ids)
    for outcome in outcomes:
        assert isinstance(outcome, ServiceUnavailable)
        assert outcome.status == 503
        assert outcome.headers == {"Retry-After": "1"}
    assert _audited(clean_database, ids) == {}
    # The writer survives a failed batch: the next one commits.
    writer.record([read_event("after-refusal")])
    assert set(_audited(clean_database, ["after-refusal"])) == {"after-refusal"}


def test_close_commits_what_is_queued_then_refuses_more(
    clean_database: Database, writer: AuditWriter
) -> None:
    ids = [f"drain-{n}" for n in range(5)]
    with writes_held(clean_database):
        futures = [writer.submit([read_event(i)]) for i in ids]
        closing = threading.Thread(target=writer.close, kwargs={"timeout": 30})
        closing.start()
        wait_for(lambda: writer.queued() <= len(ids), "close to be under way")
        with pytest.raises(WriterClosed):
            writer.submit([read_event("too-late")])
        assert not any(f.done() for f in futures)
    closing.join(30)
    assert not closing.is_alive()
    for future in futures:
        future.result(0)
    assert set(_audited(clean_database, [*ids, "too-late"])) == set(ids)


def test_events_of_a_batch_keep_their_own_ids_and_content(
    clean_database: Database, writer: AuditWriter
) -> None:
    events = [read_event(f"content-{n}") for n in range(6)]
    writer.record(events)
    found = _audited(clean_database, [f"content-{n}" for n in range(6)])
    assert len(found) == 6
    with clean_database.transaction(write=False) as conn:
        rows = conn.execute(select(R.c.id).where(R.c.resource_type == "AuditEvent")).scalars().all()
        stored = [ResourceStore(conn).current("AuditEvent", rid_) for rid_ in rows]
    by_entity = {s.content["entity"][0]["what"]["reference"]: s.content for s in stored if s and s.content}
    for event in events:
        content = by_entity[event["entity"][0]["what"]["reference"]]
        assert content == {**event, "id": content["id"], "meta": content["meta"]}


def test_coroutines_awaiting_one_batch_are_settled_in_one_callback_on_their_loop(
    clean_database: Database, writer: AuditWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"loop-{n}" for n in range(6)]
    callbacks: list[int] = []

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
            callbacks.append(len(args[0]) if args and isinstance(args[0], list) else 0)
            return original(callback, *args, **kwargs)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        with writes_held(clean_database):
            plug = writer.submit([read_event("plug")])
            wait_for(lambda: writer.queued() == 0, "the writer to take the first batch")
            tasks = [asyncio.create_task(writer.commit([read_event(i)])) for i in ids]
            while writer.queued() < len(ids):
                await asyncio.sleep(0.01)
            assert not any(t.done() for t in tasks)  # nothing is answered before its commit
        plug.result(30)
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(main())
    assert outcomes == [None] * len(ids)
    assert len(callbacks) == 1  # one wake-up of the loop for the whole batch
    assert callbacks[0] == len(ids)
    assert set(_audited(clean_database, ids)) == set(ids)


def test_a_coroutine_hears_a_failed_batch_as_503(clean_database: Database, writer: AuditWriter) -> None:
    async def main() -> object:
        try:
            await writer.commit([read_event("refused-async")])
        except ServiceUnavailable as exc:
            return exc
        return None

    with refused_audit(clean_database):
        outcome = asyncio.run(main())
    assert isinstance(outcome, ServiceUnavailable)
    assert outcome.headers == {"Retry-After": "1"}
    assert _audited(clean_database, ["refused-async"]) == {}


def test_a_coroutine_whose_batch_does_not_commit_in_time_gets_503(
    clean_database: Database, writer: AuditWriter
) -> None:
    """The deadline holds on both paths: the loop's batch handed to the thread (SQLite) and the
    thread's queue (PostgreSQL). The event is still committed once the writes are free."""

    async def main() -> list[object]:
        return await asyncio.gather(
            *(writer.commit([read_event(f"late-{n}")], timeout=0.3) for n in range(3)),
            return_exceptions=True,
        )

    with writes_held(clean_database):
        outcomes = asyncio.run(main())
    assert [type(o) for o in outcomes] == [ServiceUnavailable] * 3
    wait_for(lambda: len(_audited(clean_database, [f"late-{n}" for n in range(3)])) == 3, "the late commit")

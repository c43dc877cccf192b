"""The audit writer on the real test database (SQLite or PostgreSQL): group commit and its failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from service.audit.writer import AuditWriter, WriterClosed
from service.errors import ServiceUnavailable
from service.storage.database import Database
from service.storage.resources import R, ResourceStore
from service.storage.tables import IdxReference
from tests.audit._audit_faults import read_event, refused_audit, wait_for, write_commits, writes_held

IDX_REF = IdxReference.__table__  # type: ignore[attr-defined]


@pytest.fixture
def writer(clean_database: Database) -> Iterator[AuditWriter]:
    writer = AuditWriter(clean_database)
    yield writer
    writer.close(timeout=30)


def _audited(database: Database, patient_ids: list[str]) -> dict[str, str]:
    """patient id -> meta.lastUpdated of the AuditEvent found for it through the entity index."""
    with database.transaction(write=False) as conn:
        rows = conn.execute(
            select(IDX_REF.c.target_id, R.c.content)
            .join(R, R.c.rid == IDX_REF.c.rid)
            .where(
                IDX_REF.c.resource_type == "AuditEvent",
                IDX_REF.c.param == "entity",
                IDX_REF.c.target_id.in_(patient_ids),
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

"""AuditEvents indexed after they are written (service/audit/indexing.py, ADR 0015): durable at once,
searchable by every search that follows, and indexed in the background so the queue stays small."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from service.audit import indexing
from service.audit.writer import AuditWriter
from service.storage import audit_queue
from service.storage.database import Database
from service.storage.resources import R
from service.storage.tables import IdxReference
from tests.audit._audit_faults import read_event, wait_for
from tests.support.clients import FhirClients

IDX_REF = IdxReference.__table__  # type: ignore[attr-defined]


def _queued(db: Database) -> int:
    with db.transaction(write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(audit_queue.QUEUE)).scalar_one())


def _indexed_entities(db: Database, patient_ids: list[str]) -> set[str]:
    with db.transaction(write=False) as conn:
        rows = conn.execute(
            select(IDX_REF.c.target_id).where(
                IDX_REF.c.resource_type == "AuditEvent",
                IDX_REF.c.param == "entity",
                IDX_REF.c.target_id.in_(patient_ids),
            )
        ).all()
    return {row.target_id for row in rows}


@pytest.fixture
def quiet_writer(clean_database: Database) -> Iterator[AuditWriter]:
    writer = AuditWriter(clean_database, idle_indexing=False)
    yield writer
    writer.close(timeout=30)


def test_events_are_durable_at_once_and_indexed_by_a_drain(
    clean_database: Database, quiet_writer: AuditWriter
) -> None:
    ids = [f"queued-{n}" for n in range(5)]
    for patient_id in ids:
        quiet_writer.record([read_event(patient_id)])
    with clean_database.transaction(write=False) as conn:
        stored = conn.execute(
            select(func.count()).select_from(R).where(R.c.resource_type == "AuditEvent")
        ).scalar_one()
    assert stored == 5  # committed before record() returned
    assert _queued(clean_database) == 5
    assert _indexed_entities(clean_database, ids) == set()
    assert indexing.drain(clean_database, step=2) == 5  # in three transactions
    assert _queued(clean_database) == 0
    assert _indexed_entities(clean_database, ids) == set(ids)
    assert indexing.drain(clean_database) == 0


def test_the_writer_indexes_when_idle(clean_database: Database) -> None:
    writer = AuditWriter(clean_database)
    try:
        writer.record([read_event("idle-1"), read_event("idle-2")])
        wait_for(lambda: _queued(clean_database) == 0, "the writer to index in an idle moment")
        assert _indexed_entities(clean_database, ["idle-1", "idle-2"]) == {"idle-1", "idle-2"}
    finally:
        writer.close(timeout=30)


def test_past_the_bound_every_batch_indexes_a_step(
    clean_database: Database, quiet_writer: AuditWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexing, "BOUND", 0)
    quiet_writer.record([read_event("bounded-1")])
    wait_for(lambda: _queued(clean_database) == 0, "the batch's indexing step")
    assert _indexed_entities(clean_database, ["bounded-1"]) == {"bounded-1"}


def test_an_audit_search_right_after_the_reads_finds_them(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    created = clinic.post(
        "/fhir/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"system": "https://clinic.example.org/Id/local", "value": "q-1"}],
        },
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    for _ in range(3):
        assert clinic.get(f"/fhir/Patient/{pid}").status_code == 200
    admin = fhir.client("admin", "hub")
    found = admin.get("/fhir/AuditEvent", params={"entity": f"Patient/{pid}", "subtype": "read"})
    assert found.status_code == 200, found.text
    assert len(found.json().get("entry", [])) == 3

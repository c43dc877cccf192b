"""AuditEvent search values in their own tables (storage/audit_index.py, ADR 0017).

What the audit tables and the generic ones give back together, through ``audit_index.source``, is
exactly the index rows of the event that was written, for every AuditEvent parameter and every shape
of event (the generic FHIRPath indexer's rows are the reference), on SQLite and on PostgreSQL. Events
stored before the layout (every row in the generic tables) read back the same way.
"""

from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from service.audit import record
from service.search.extract import extract_index_rows
from service.search.params import params_for
from service.search.types import DateRow, IndexRow, ReferenceRow, TokenRow, UriRow
from service.storage import audit_index
from service.storage.database import Database
from service.storage.index_rows import ROW_TABLES
from service.storage.resources import ResourceStore
from tests.audit._event_shapes import CLINIC, NOW, PATIENT, built_events, store_the_old_way

KIND = {"token": TokenRow, "date": DateRow, "reference": ReferenceRow, "uri": UriRow}


def _two_agents() -> dict[str, Any]:
    event = record.build_event(caller=CLINIC, action="read", now=NOW, status=200, entities=[PATIENT])
    second = copy.deepcopy(event["agent"][0])
    second["who"] = {"reference": "Patient/abc"}
    second["altId"] = "second-client"
    second["requestor"] = False
    event["agent"].append(second)
    return event


def _odd_shapes() -> dict[str, Any]:
    """Two subtypes, a tag, a source reference, an entity by URL and one by identifier only."""
    event = record.build_event(caller=CLINIC, action="search", now=NOW, status=200, patients=["Patient/abc"])
    event["subtype"].append({"system": "https://example.org/sub", "code": "second", "display": "Second One"})
    event["meta"] = {"tag": [{"system": "https://example.org/tag", "code": "t"}]}
    event["source"]["observer"] = {"reference": "Device/hub-1"}
    event["entity"] += [
        {"what": {"reference": "https://other.example/fhir/Patient/p9"}},
        {"what": {"identifier": {"value": "x"}}},
        {"what": {"reference": "Patient/abc/_history/2"}},
    ]
    return event


def _events() -> list[dict[str, Any]]:
    return [
        *built_events(),
        _two_agents(),
        _odd_shapes(),
        {"resourceType": "AuditEvent", "recorded": "2026-12-01", "type": {"code": "x"}},  # the bare minimum
    ]


def _read_back(conn: Connection, rid: int) -> set[IndexRow]:
    """Every index row of AuditEvent ``rid``, read where the search reads it."""
    out: set[IndexRow] = set()
    for name, param in params_for("AuditEvent").items():
        if name in ("_id", "_lastUpdated"):
            continue
        kind = KIND[param.type]
        if audit_index.has_own_rows("AuditEvent", name):
            source = audit_index.source(name)
        else:
            source = ROW_TABLES[kind].__table__  # type: ignore[attr-defined]
        names = [f.name for f in fields(kind) if f.name != "param"]
        rows = conn.execute(
            select(*(source.c[n] for n in names)).where(
                source.c.rid == rid, source.c.resource_type == "AuditEvent", source.c.param == name
            )
        ).all()
        out.update(kind(name, *row) for row in rows)
    return out


@pytest.mark.parametrize("event", _events(), ids=lambda e: f"{e.get('subtype', [{}])[0].get('code')}")
def test_rows_read_back_are_the_rows_of_the_event(clean_database: Database, event: dict[str, Any]) -> None:
    expected = set(extract_index_rows(event))
    with clean_database.transaction() as conn:
        [stored] = ResourceStore(conn).create_many("AuditEvent", [(event, record.index_rows(event))], now=NOW)
    with clean_database.transaction(write=False) as conn:
        assert _read_back(conn, stored.rid) == expected
        own = conn.execute(select(func.count()).select_from(audit_index.AI)).scalar_one()
    assert own == 1  # one audit_index row per event, whatever its shape


def test_the_usual_event_leaves_nothing_in_the_generic_tables(clean_database: Database) -> None:
    """A read's event: its rows are all in the audit tables (the point of the layout)."""
    event = _events()[1]  # a search naming two Patients
    with clean_database.transaction() as conn:
        ResourceStore(conn).create_many("AuditEvent", [(event, record.index_rows(event))], now=NOW)
    with clean_database.transaction(write=False) as conn:
        generic = [
            conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()  # type: ignore[attr-defined]
            for model in ROW_TABLES.values()
        ]
        entities = conn.execute(select(func.count()).select_from(audit_index.AE)).scalar_one()
    assert generic == [0] * len(ROW_TABLES)
    assert entities == 5  # entity: Patient/abc, Task/t-1, Patient/other; patient: Patient/abc, Patient/other


def test_events_stored_the_old_way_read_back_the_same(clean_database: Database) -> None:
    """Before migration 0007 every row went to the generic tables; nothing was copied, so the union
    must find them there."""
    events = _events()
    with clean_database.transaction() as conn:
        stored = store_the_old_way(conn, events, NOW)
    with clean_database.transaction(write=False) as conn:
        for s, event in zip(stored, events, strict=True):
            assert _read_back(conn, s.rid) == set(extract_index_rows(event))


def test_an_update_rewrites_the_audit_rows(clean_database: Database) -> None:
    """The API never updates an AuditEvent; the store still keeps its index consistent if asked to."""
    first, second = _events()[0], _events()[2]
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        [stored] = store.create_many("AuditEvent", [(first, record.index_rows(first))], now=NOW)
        store.update(stored, second, record.index_rows(second), now=NOW)
    with clean_database.transaction(write=False) as conn:
        assert _read_back(conn, stored.rid) == set(extract_index_rows(second))

"""The shapes of AuditEvent the hub writes (record.build_event), for the tests of their index rows
(tests/audit/test_audit_index_rows.py) and of where those rows are stored
(tests/storage/test_audit_index.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert

from service.access.caller import Caller
from service.audit import record
from service.search.extract import extract_index_rows
from service.storage import audit_index
from service.storage.index_rows import ROW_TABLES, row_values
from service.storage.resources import ResourceStore, Stored

NOW = datetime(2026, 12, 1, 14, 20, 54, 871000, tzinfo=UTC)
CLINIC = Caller(
    client_id="cl", organization_id="org-1", role="clinic", scopes="system/*.rs", jti="j", source="10.0.0.1"
)
PERSON = Caller(
    client_id="web", organization_id="org-2", role="partner", scopes="", jti="", source="", person="a@b.org"
)
ADMIN = Caller(client_id="admin", organization_id="wraparound", role="admin", scopes="", jti="", source="")
PATIENT = Stored(1, "Patient", "abc", 3, NOW, False, {})
TASK = Stored(2, "Task", "t-1", 1, NOW, False, {})


def built_events() -> list[dict[str, Any]]:
    return [
        record.build_event(caller=CLINIC, action="read", now=NOW, status=200, entities=[PATIENT]),
        record.build_event(
            caller=CLINIC,
            action="search",
            now=NOW,
            status=200,
            entities=[PATIENT, TASK],
            query="owner=Organization/org-1&status=requested",
            patients=["Patient/abc", "Patient/other"],
        ),
        record.build_event(caller=PERSON, action="update", now=NOW, status=200, entities=[TASK]),
        record.build_event(caller=ADMIN, action="create", now=NOW, status=201, entities=[TASK]),
        record.build_event(
            caller=CLINIC, action="read", now=NOW, status=404, description="Patient/x is not known"
        ),
        record.build_event(caller=CLINIC, action="operation", now=NOW, status=500, query="a=b"),
        record.build_event(
            caller=CLINIC,
            action="disclosure",
            now=NOW,
            status=200,
            entities=[TASK],
            patients=["https://other.example/fhir/Patient/p9"],
            subtype={"system": "https://wraparound.org.uk/fhir/CodeSystem/audit", "code": "disclosure"},
        ),
    ]


def store_the_old_way(conn: Connection, events: list[dict[str, Any]], now: datetime) -> list[Stored]:
    """AuditEvents as stored before migration 0007: every index row in the generic tables and no
    audit_index row (storage/audit_index.py must still find them)."""
    stored = ResourceStore(conn).create_many("AuditEvent", [(event, []) for event in events], now=now)
    conn.execute(delete(audit_index.AI).where(audit_index.AI.c.rid.in_([s.rid for s in stored])))
    for s, event in zip(stored, events, strict=True):
        for row in extract_index_rows(event):
            table = ROW_TABLES[type(row)].__table__  # type: ignore[attr-defined]
            conn.execute(insert(table).values(**row_values(row, s.rid, "AuditEvent")))
    return stored

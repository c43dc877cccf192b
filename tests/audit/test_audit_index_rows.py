"""The AuditEvent indexer's shortcut (record.index_rows) gives exactly the rows the generic FHIRPath
indexer gives, for every shape of event the hub writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.access.caller import Caller
from service.audit import record
from service.search.extract import extract_index_rows
from service.storage.resources import Stored

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


def _events() -> list[dict[str, Any]]:
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


@pytest.mark.parametrize("event", _events(), ids=lambda e: e["subtype"][0]["code"] + "-" + e["outcome"])
def test_shortcut_rows_equal_the_fhirpath_rows(event: dict[str, Any]) -> None:
    assert record.index_rows(event) == extract_index_rows(event)


def test_an_event_of_another_shape_is_indexed_the_generic_way() -> None:
    event = record.build_event(caller=CLINIC, action="read", now=NOW, status=200, entities=[PATIENT])
    event["meta"] = {"tag": [{"system": "https://example.org/tags", "code": "t"}]}
    rows = record.index_rows(event)
    assert rows == extract_index_rows(event)
    assert any(getattr(row, "param", None) == "_tag" for row in rows)

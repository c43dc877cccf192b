"""Searching the audit trail over HTTP, on the layout of ADR 0017 (storage/audit_index.py).

Events are written straight to the database, some in the audit tables and one the way events were
stored before migration 0007 (every index row in the generic tables), then found by an administrator
through the API: modifiers, prefixes, sorting by date, paging, _include and _revinclude, over both
layouts at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.access.caller import Caller
from service.audit import record
from service.storage.resources import ResourceStore, Stored
from tests.audit._event_shapes import store_the_old_way
from tests.referrals._workflow_hub import ok
from tests.support.clients import Client, FhirClients

T0 = datetime(2026, 11, 3, 9, 0, 0, 123000, tzinfo=UTC)
REST = "http://hl7.org/fhir/restful-interaction"


@dataclass
class Seeded:
    admin: Client
    altid: str
    org: str  # Organization/<id>, the agent of every seeded event
    p1: str
    p2: str
    ids: dict[str, str]  # name -> AuditEvent id


def _caller(altid: str, org_id: str) -> Caller:
    return Caller(
        client_id=altid, organization_id=org_id, role="clinic", scopes="", jti="j", source="10.0.0.9"
    )


@pytest.fixture
def seeded(fhir: FhirClients) -> Seeded:
    admin = fhir.client("admin", "hub")
    org = ok(admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "Seen"}), 201)
    altid, p1, p2 = f"c9-{uuid.uuid4().hex[:8]}", f"p1-{uuid.uuid4().hex[:8]}", f"p2-{uuid.uuid4().hex[:8]}"
    caller = _caller(altid, org["id"])

    def patient(pid: str) -> Stored:
        return Stored(0, "Patient", pid, 1, T0, False, None)

    events = {
        "read": record.build_event(caller=caller, action="read", now=T0, status=200, entities=[patient(p1)]),
        "search": record.build_event(
            caller=caller,
            action="search",
            now=T0 + timedelta(minutes=1),
            status=200,
            query="Task?owner=x",
            patients=[f"Patient/{p1}", f"Patient/{p2}"],
        ),
        "old": record.build_event(  # stored the pre-0007 way, below
            caller=caller, action="read", now=T0 + timedelta(minutes=2), status=200, entities=[patient(p2)]
        ),
        "refused": record.build_event(
            caller=caller, action="read", now=T0 + timedelta(minutes=3), status=404
        ),
    }
    ids: dict[str, str] = {}
    with fhir.db.transaction() as conn:
        store = ResourceStore(conn)
        for name, event in events.items():
            if name != "old":
                [stored] = store.create_many("AuditEvent", [(event, record.index_rows(event))], now=T0)
                ids[name] = stored.id
                continue
            [stored] = store_the_old_way(conn, [event], T0)
            ids[name] = stored.id
    return Seeded(admin, altid, f"Organization/{org['id']}", f"Patient/{p1}", f"Patient/{p2}", ids)


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def _find(s: Seeded, query: str) -> list[str]:
    """The seeded events matching ``query`` by name, in the order returned (every page)."""
    names = {v: k for k, v in s.ids.items()}
    found: list[str] = []
    url: str | None = f"/fhir/AuditEvent?{query}&_count=2"
    while url:
        bundle = ok(s.admin.get(url))
        found += [names[i] for i in _ids(bundle) if i in names]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return found


def test_each_parameter_finds_new_and_old_layout_events(seeded: Seeded) -> None:
    s = seeded
    assert sorted(_find(s, f"altid={s.altid}")) == ["old", "read", "refused", "search"]
    assert sorted(_find(s, f"agent={s.org}")) == ["old", "read", "refused", "search"]
    assert sorted(_find(s, f"entity={s.p2}")) == ["old", "search"]
    assert sorted(_find(s, f"patient={s.p2}")) == ["old", "search"]
    assert sorted(_find(s, f"patient={s.p1}")) == ["read", "search"]
    assert sorted(_find(s, f"altid={s.altid}&subtype={REST}|read")) == ["old", "read", "refused"]
    assert sorted(_find(s, f"altid={s.altid}&action=E")) == ["search"]
    assert sorted(_find(s, f"altid={s.altid}&outcome=4")) == ["refused"]
    assert sorted(_find(s, f"altid={s.altid}&type:text=restful")) == ["old", "read", "refused", "search"]
    assert _find(s, f"altid={s.altid}&type:text=nothing") == []


def test_dates_sort_and_page_across_both_layouts(seeded: Seeded) -> None:
    s = seeded
    after_first = (T0 + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    assert _find(s, f"altid={s.altid}&_sort=date") == ["read", "search", "old", "refused"]
    assert _find(s, f"altid={s.altid}&_sort=-date") == ["refused", "old", "search", "read"]
    assert _find(s, f"altid={s.altid}&date=gt{after_first}&_sort=date") == ["search", "old", "refused"]
    assert _find(s, f"altid={s.altid}&date=lt{after_first}") == ["read"]
    assert _find(s, f"altid={s.altid}&date=2026-11-03T09:02:00.123Z") == ["old"]


def test_modifiers_missing_and_not(seeded: Seeded) -> None:
    s = seeded
    assert _find(s, f"altid={s.altid}&entity:missing=true") == ["refused"]
    assert sorted(_find(s, f"altid={s.altid}&entity:missing=false")) == ["old", "read", "search"]
    assert sorted(_find(s, f"altid={s.altid}&action:not=R")) == ["search"]
    assert sorted(_find(s, f"altid={s.altid}&patient:missing=true")) == ["refused"]


def test_include_and_revinclude_follow_audit_references(seeded: Seeded) -> None:
    s = seeded
    bundle = ok(s.admin.get(f"/fhir/AuditEvent?entity={s.p1}&_include=AuditEvent:agent"))
    assert sorted(_ids(bundle)) == sorted([s.ids["read"], s.ids["search"]])
    assert _ids(bundle, "include") == [s.org.split("/")[1]]
    org_id = s.org.split("/")[1]
    bundle = ok(s.admin.get(f"/fhir/Organization?_id={org_id}&_revinclude=AuditEvent:agent&_count=50"))
    assert _ids(bundle) == [org_id]
    assert set(s.ids.values()) <= set(_ids(bundle, "include"))

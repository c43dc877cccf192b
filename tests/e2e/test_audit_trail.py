"""The audit trail (issue 3 "Audit"), over real HTTP with real tokens.

Every interaction leaves an AuditEvent shaped after IHE BALP (https://profiles.ihe.net/ITI/BALP/):
the client and its organisation as agent, with the token's jti but never the token; the resources
touched as entities; for searches the query (base64, ``entity.query``) and the Patients returned.
Admins find them by agent, entity, date, type, subtype, action and outcome; nobody can change them.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest

from tests.referrals._workflow_hub import NHS, Hub, entries, ok
from tests.support.clients import Client, FhirClients, assertion
from tests.support.logscan import SECRETS

REST = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
JTI = re.compile(r"^urn:jti:[0-9a-f]{32}$")


@dataclass
class Trail:
    hub: Hub
    start: str
    patient: str  # Patient/<id>
    search_query: str
    bundle_patient: str


def _activity(hub: Hub) -> tuple[str, str, str]:
    clinic = hub.clinic
    patient = hub.patient()
    ok(clinic.get(f"/fhir/{patient}"))
    ok(clinic.get(f"/fhir/{patient}/_history/1"))
    query = f"identifier={NHS}|9000000009"
    assert entries(clinic.get(f"/fhir/Patient?{query}"))
    body = ok(clinic.get(f"/fhir/{patient}"))
    ok(clinic.put(f"/fhir/{patient}", json={**body, "gender": "unknown"}))
    ok(clinic.get(f"/fhir/{patient}/_history"))
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS, "value": "9434765919"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    created = ok(clinic.post("/fhir", json=transaction))
    bundle_patient = "/".join(created["entry"][0]["response"]["location"].split("/")[:2])
    qr = ok(hub.assessment(patient), 201)["id"]
    ok(clinic.post(f"/fhir/QuestionnaireResponse/{qr}/$suggest-referrals"))
    assert clinic.get(f"/fhir/Patient/{uuid.uuid4()}").status_code == 404
    assert clinic.delete(f"/fhir/{bundle_patient}").status_code == 204
    return patient, f"Patient?{query}", bundle_patient


@pytest.fixture
def trail(fhir: FhirClients) -> Trail:
    start = (datetime.now(UTC) - timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    hub = Hub.build(fhir)
    patient, query, bundle_patient = _activity(hub)
    return Trail(hub, start, patient, query, bundle_patient)


def _events(admin: Client, query: str) -> list[dict[str, Any]]:
    """Every AuditEvent matching ``query``, following the paging links."""
    found: list[dict[str, Any]] = []
    url: str | None = f"/fhir/AuditEvent?{query}&_count=100"
    while url:
        bundle = ok(admin.get(url))
        found.extend(e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return found


def _subtype(event: dict[str, Any]) -> str:
    return str(event["subtype"][0]["code"])


def _whats(event: dict[str, Any]) -> list[str]:
    return [e["what"]["reference"] for e in event.get("entity", []) if "what" in e]


def test_every_interaction_is_audited_with_its_subtype_and_action(trail: Trail) -> None:
    admin, clinic = trail.hub.admin, trail.hub.clinic
    mine = _events(admin, f"agent={clinic.org_ref}")
    by_subtype: dict[str, list[dict[str, Any]]] = {}
    for event in mine:
        by_subtype.setdefault(_subtype(event), []).append(event)
    expected_action = {
        "create": "C",
        "read": "R",
        "vread": "R",
        "update": "U",
        "delete": "D",
        "history": "R",
        "search": "E",
        "transaction": "E",
        "operation": "E",
        "110114": "E",
    }
    for subtype, action in expected_action.items():
        assert subtype in by_subtype, (subtype, sorted(by_subtype))
        assert {e["action"] for e in by_subtype[subtype]} == {action}, subtype
    versioned = f"{trail.patient}/_history/1"
    assert any(versioned in _whats(e) and e["outcome"] == "0" for e in by_subtype["read"])
    assert any(versioned in _whats(e) for e in by_subtype["vread"])
    assert any(f"{trail.patient}/_history/2" in _whats(e) for e in by_subtype["update"])
    assert any(f"{trail.bundle_patient}/_history/1" in _whats(e) for e in by_subtype["create"])
    assert any(f"{trail.bundle_patient}/_history/2" in _whats(e) for e in by_subtype["delete"])
    assert any(set(_whats(e)) >= {versioned, f"{trail.patient}/_history/2"} for e in by_subtype["history"])
    # The operation names its QuestionnaireResponse and the Patient it is about.
    assert any(trail.patient in _whats(e) for e in by_subtype["operation"])
    # The agent: client id, organisation, role, the token's jti and the network address.
    agent = by_subtype["read"][0]["agent"][0]
    assert agent["who"]["reference"] == clinic.org_ref
    assert agent["who"]["identifier"]["value"].endswith("-clinic-client")
    assert agent["role"] == [{"text": "clinic"}]
    assert agent["requestor"] is True
    assert agent["network"]["address"] == "127.0.0.1"
    assert [p for p in agent["policy"] if JTI.match(p)]


def _queries(event: dict[str, Any]) -> list[str]:
    # BALP Query entity: role 24, the query base64-encoded as the server received it (URL-encoded).
    return [
        unquote_plus(base64.b64decode(e["query"]).decode())
        for e in event.get("entity", [])
        if e.get("role", {}).get("code") == "24" and "query" in e
    ]


def test_search_records_the_query_and_the_patients_returned(trail: Trail) -> None:
    searches = _events(trail.hub.admin, f"agent={trail.hub.clinic.org_ref}&subtype={REST}|search")
    event = next((ev for ev in searches if trail.search_query in _queries(ev)), None)
    assert event is not None, [_queries(ev) for ev in searches]
    assert event["action"] == "E"
    assert event["outcome"] == "0"
    patients = [e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "1"]
    assert patients == [trail.patient]


def test_failures_are_audited(fhir: FhirClients, trail: Trail) -> None:
    admin, clinic = trail.hub.admin, trail.hub.clinic
    missing = f"Patient/{uuid.uuid4()}"
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": missing}}],
    }
    refusals = [
        clinic.get(f"/fhir/{missing}/_history/1"),
        clinic.get(f"/fhir/{missing}/_history"),
        clinic.post("/fhir", json=transaction),
        clinic.get("/fhir/Patient?no-such-parameter=1", headers={"Prefer": "handling=strict"}),
        clinic.post(f"/fhir/QuestionnaireResponse/{uuid.uuid4()}/$suggest-referrals"),
    ]
    assert [r.status_code for r in refusals] == [404, 404, 404, 400, 404]
    failed = _events(admin, f"agent={clinic.org_ref}&outcome=4")
    assert any(_subtype(e) == "read" and "is not known" in e.get("outcomeDesc", "") for e in failed), failed
    # Each failure is recorded as the interaction that failed.
    assert {_subtype(e) for e in failed} >= {"read", "vread", "history", "transaction", "search", "operation"}
    # A refused token request (wrong audience) is recorded as a failed authentication.
    refused = fhir.http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(
                f"{clinic.organization_id}-clinic-client", "https://elsewhere/token"
            ),
            "scope": "system/*.rs",
        },
    )
    assert refused.status_code == 401
    tokens = _events(admin, f"subtype={DCM}|110114&outcome=4")
    assert tokens, "the refused token request left an AuditEvent"
    issued = _events(admin, f"subtype={DCM}|110114&outcome=0&agent={clinic.org_ref}")
    assert issued
    assert issued[0]["outcomeDesc"].startswith("granted ")


def test_admin_searches_by_entity_date_type_action_outcome(trail: Trail) -> None:
    admin = trail.hub.admin
    about = _events(admin, f"entity={trail.patient}")
    assert {_subtype(e) for e in about} >= {"read", "vread", "update", "create", "history"}, about
    assert _events(admin, f"date=ge{trail.start}&entity={trail.patient}") == about
    assert {e["id"] for e in _events(admin, f"patient={trail.patient}")} >= {e["id"] for e in about}
    assert _events(admin, f"date=lt{trail.start}") == []
    rest = _events(admin, "type=http://terminology.hl7.org/CodeSystem/audit-event-type|rest")
    creates = _events(admin, "action=C")
    assert creates
    assert {e["action"] for e in creates} == {"C"}
    assert {e["id"] for e in creates} <= {e["id"] for e in rest}
    failures = _events(admin, "outcome=4")
    assert failures
    assert {e["outcome"] for e in failures} == {"4"}
    assert _events(admin, f"subtype={REST}|delete&entity={trail.bundle_patient}")


def test_admin_searches_by_client_id(trail: Trail) -> None:
    # agent.altId carries the SMART client id (R4 search parameter AuditEvent-altid).
    clinic = trail.hub.clinic
    by_client = _events(trail.hub.admin, f"altid={clinic.client_id}")
    assert by_client
    assert {e["agent"][0]["altId"] for e in by_client} == {clinic.client_id}
    by_org = {e["id"] for e in _events(trail.hub.admin, f"agent={clinic.org_ref}")}
    assert {e["id"] for e in by_client} <= by_org


def _audit_writes(client: Client, event: dict[str, Any]) -> list[int]:
    path = f"/fhir/AuditEvent/{event['id']}"
    return [
        client.put(path, json={**event, "outcome": "0", "outcomeDesc": "tampered"}).status_code,
        client.delete(path).status_code,
        client.post(
            "/fhir/AuditEvent", json={k: v for k, v in event.items() if k not in ("id", "meta")}
        ).status_code,
        client.put(f"/fhir/AuditEvent?entity={event['id']}", json=event).status_code,
    ]


def test_audit_events_are_append_only(trail: Trail) -> None:
    admin = trail.hub.admin
    event = _events(admin, "outcome=4")[0]
    # AuditEvent supports only read and search: every write is 405 Method Not Allowed, admin included.
    for client in (admin, trail.hub.clinic, trail.hub.partner):
        assert _audit_writes(client, event) == [405, 405, 405, 405], client.role
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "DELETE", "url": f"AuditEvent/{event['id']}"}},
            {"request": {"method": "PUT", "url": f"AuditEvent/{event['id']}"}, "resource": event},
        ],
    }
    statuses = [e["response"]["status"] for e in ok(admin.post("/fhir", json=batch))["entry"]]
    assert statuses == ["405 Method Not Allowed"] * 2
    assert ok(admin.get(f"/fhir/AuditEvent/{event['id']}")) == event


def test_audit_holds_jti_never_the_token(fhir: FhirClients, trail: Trail) -> None:
    admin, clinic = trail.hub.admin, trail.hub.clinic
    everything = _events(admin, "")
    text = httpx.Response(200, json=everything).text
    assert len(everything) > 20
    for client in (admin, clinic, trail.hub.partner, trail.hub.other_partner):
        assert client.token not in text
    # Nor any token or client assertion issued so far in the run (tests.support records them all).
    assert not [secret for secret in SECRETS if secret and secret in text]
    # One token, one jti: the token-issue event and the clinic's reads carry the same one.
    mine = _events(admin, f"agent={clinic.org_ref}")
    jtis = {p for e in mine for p in e["agent"][0].get("policy", [])}
    assert len(jtis) == 1
    assert JTI.match(jtis.pop())

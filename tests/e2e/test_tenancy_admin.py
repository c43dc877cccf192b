"""Roles at the type level (CONTRACT.md "Who may see and do what"), over real HTTP with real tokens.

Admins manage the directory and definitions and read audit, but get no clinical data; clinics and
partners read the public directory but neither write it nor read audit; partners create no clinical
records. A type a role may not touch at all is refused with 403 (``service.access.policy``), before
any record is looked up, so the 403 says nothing about whether an id exists.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.referrals._workflow_hub import Hub, consent_body, entries, ok, permit
from tests.support.clients import Client, FhirClients

CANON = "https://example.org/fhir/tenancy-test"
CONNECTION = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"

DIRECTORY: dict[str, dict[str, Any]] = {
    "Organization": {"name": "Test Org"},
    "HealthcareService": {"name": "Test service", "active": True},
    "Location": {"name": "Test clinic room", "status": "active"},
    "Endpoint": {
        "status": "active",
        "connectionType": {"system": CONNECTION, "code": "hl7-fhir-rest"},
        "payloadType": [{"text": "FHIR transaction"}],
        "address": "https://partner.example.org/fhir",
    },
    "Questionnaire": {
        "url": f"{CANON}/Questionnaire/q",
        "status": "draft",
        "item": [{"linkId": "q1", "text": "How are you?", "type": "string"}],
    },
    "CodeSystem": {
        "url": f"{CANON}/CodeSystem/cs",
        "status": "draft",
        "content": "complete",
        "concept": [{"code": "a", "display": "A"}],
    },
    "ValueSet": {"url": f"{CANON}/ValueSet/vs", "status": "draft"},
    "StructureDefinition": {
        "url": f"{CANON}/StructureDefinition/sd",
        "name": "TestProfile",
        "status": "draft",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
    },
}
CLINICAL = ["Patient", "ServiceRequest", "Task", "Consent", "QuestionnaireResponse", "Observation"]


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _body(resource_type: str) -> dict[str, Any]:
    return {"resourceType": resource_type, **DIRECTORY[resource_type]}


def _forbidden(response: Any) -> None:
    assert response.status_code == 403, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize("resource_type", sorted(DIRECTORY))
def test_admin_manages_directory_and_definitions(hub: Hub, resource_type: str) -> None:
    admin = hub.admin
    created = ok(admin.post(f"/fhir/{resource_type}", json=_body(resource_type)), 201)
    path = f"/fhir/{resource_type}/{created['id']}"
    assert ok(admin.get(path))["id"] == created["id"]
    assert created["id"] in {r["id"] for r in entries(admin.get(f"/fhir/{resource_type}?_count=100"))}
    changed = {
        **created,
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    }
    assert ok(admin.put(path, json=changed))["meta"]["versionId"] == "2"
    assert admin.delete(path).status_code == 204
    assert admin.get(path).status_code == 410


def test_admin_reads_audit(hub: Hub) -> None:
    events = entries(hub.admin.get("/fhir/AuditEvent?_count=5"))
    assert events, "setting up the hub was audited"
    assert ok(hub.admin.get(f"/fhir/AuditEvent/{events[0]['id']}"))["resourceType"] == "AuditEvent"
    assert ok(hub.admin.get("/fhir/AuditEvent/_history?_count=5"))["type"] == "history"


def test_admin_gets_no_clinical_data(hub: Hub) -> None:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref))
    request_id, task = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    existing = {
        "Patient": patient.split("/")[1],
        "ServiceRequest": request_id,
        "Task": task["id"],
        "Consent": consent.split("/")[1],
        "QuestionnaireResponse": ok(hub.assessment(patient), 201)["id"],
        "Observation": str(uuid.uuid4()),
    }
    admin = hub.admin
    for resource_type in CLINICAL:
        for path in (
            f"/fhir/{resource_type}/{existing[resource_type]}",
            f"/fhir/{resource_type}/{uuid.uuid4()}",
            f"/fhir/{resource_type}/{existing[resource_type]}/_history",
            f"/fhir/{resource_type}/{existing[resource_type]}/_history/1",
            f"/fhir/{resource_type}",
            f"/fhir/{resource_type}?_summary=count",
            f"/fhir/{resource_type}/_history",
        ):
            _forbidden(admin.get(path))
        if resource_type != "Observation":  # server-written: no client deletes it (405)
            _forbidden(admin.delete(f"/fhir/{resource_type}/{existing[resource_type]}"))
    _forbidden(admin.post("/fhir/Patient", json={"resourceType": "Patient"}))
    # Not through a Bundle either: each entry is authorised like a single request.
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{existing['Patient']}"}},
            {"request": {"method": "GET", "url": "Task"}},
        ],
    }
    statuses = [e["response"]["status"] for e in ok(admin.post("/fhir", json=batch))["entry"]]
    assert statuses == ["403 Forbidden", "403 Forbidden"]
    # Nor by including clinical resources from directory searches.
    found = ok(admin.get("/fhir/Organization?_revinclude=Task:owner&_revinclude=ServiceRequest:requester"))
    assert {e["resource"]["resourceType"] for e in found["entry"]} == {"Organization"}


def _clinical_clients(hub: Hub) -> list[Client]:
    return [hub.clinic, hub.partner]


def test_clinic_and_partner_cannot_read_audit(hub: Hub) -> None:
    event = entries(hub.admin.get("/fhir/AuditEvent?_count=1"))[0]
    for client in _clinical_clients(hub):
        for path in (
            "/fhir/AuditEvent",
            f"/fhir/AuditEvent?agent={client.org_ref}",
            f"/fhir/AuditEvent/{event['id']}",
            f"/fhir/AuditEvent/{event['id']}/_history",
            "/fhir/AuditEvent/_history",
        ):
            _forbidden(client.get(path))


@pytest.mark.parametrize("resource_type", sorted(DIRECTORY))
def test_clinic_and_partner_cannot_write_the_directory(hub: Hub, resource_type: str) -> None:
    existing = ok(hub.admin.post(f"/fhir/{resource_type}", json=_body(resource_type)), 201)
    for client in _clinical_clients(hub):
        _forbidden(client.post(f"/fhir/{resource_type}", json=_body(resource_type)))
        _forbidden(client.put(f"/fhir/{resource_type}/{existing['id']}", json=existing))
        _forbidden(client.delete(f"/fhir/{resource_type}/{existing['id']}"))
    assert ok(hub.admin.get(f"/fhir/{resource_type}/{existing['id']}"))["meta"]["versionId"] == "1"


def test_clinic_and_partner_read_the_public_directory(hub: Hub) -> None:
    for client in _clinical_clients(hub):
        for resource_type in ("Organization", "HealthcareService", "Questionnaire", "CodeSystem", "ValueSet"):
            assert ok(client.get(f"/fhir/{resource_type}"))["total"] >= 1, resource_type
        # Endpoint (delivery routes) is not part of the public directory.
        _forbidden(client.get("/fhir/Endpoint"))


def test_partner_creates_no_clinical_records(hub: Hub) -> None:
    patient = hub.patient()
    bodies = {
        "Patient": {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "1"}]},
        "ServiceRequest": {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": patient},
        },
        "QuestionnaireResponse": {"resourceType": "QuestionnaireResponse", "status": "in-progress"},
        "Task": {"resourceType": "Task", "status": "requested", "intent": "order"},
    }
    for resource_type, body in bodies.items():
        _forbidden(hub.partner.post(f"/fhir/{resource_type}", json=body))
    # The one Consent a partner may create is a withdrawal naming itself (issue 9; tested in
    # tests/referrals/test_workflow_partner_withdrawal.py): a permit, even well-formed, is refused.
    consent = consent_body(patient, permit(hub.partner.org_ref), hub.partner.org_ref)
    refused = hub.partner.post("/fhir/Consent", json=consent)
    assert refused.status_code == 422, refused.text
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": bodies["Patient"], "request": {"method": "POST", "url": "Patient"}}],
    }
    _forbidden(hub.partner.post("/fhir", json=transaction))
    # Clinics create referrals but never Tasks (the hub opens them).
    _forbidden(hub.clinic.post("/fhir/Task", json=bodies["Task"]))

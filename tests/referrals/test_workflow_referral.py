"""Submitting a referral over HTTP: shape, routing, consent gate and the Task it opens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.referrals._workflow_hub import (
    NHS,
    Hub,
    audit_descriptions,
    consent_body,
    deny,
    entries,
    ok,
    permit,
    referral_body,
)
from tests.support.clients import FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _ids(hub: Hub, query: str) -> list[str]:
    return [r["id"] for r in entries(hub.clinic.get(f"/fhir/{query}"))]


def test_referral_opens_exactly_one_task_seen_by_both_sides(hub: Hub) -> None:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref))
    qr = ok(hub.assessment(patient), 201)["id"]
    supporting = [{"reference": consent}, {"reference": f"QuestionnaireResponse/{qr}"}]
    request_id, task = hub.referred(patient, hub.opt_in, supportingInfo=supporting)

    assert task["status"] == "requested"
    assert task["intent"] == "order"
    assert task["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/CodeSystem/task-code",
        "code": "fulfill",
        "display": "Fulfill the focal request",
    }
    assert task["focus"] == {"reference": f"ServiceRequest/{request_id}"}
    assert task["for"] == {"reference": patient}
    assert task["requester"] == {"reference": hub.clinic.org_ref}
    assert task["owner"] == {"reference": hub.partner.org_ref}
    assert task["input"] == [
        {"type": {"text": "needs-assessment"}, "valueReference": {"reference": f"QuestionnaireResponse/{qr}"}}
    ]
    assert task["authoredOn"] == task["lastModified"]

    seen_by_partner = entries(hub.partner.get(f"/fhir/Task?focus=ServiceRequest/{request_id}"))
    assert [t["id"] for t in seen_by_partner] == [task["id"]]
    # The partner now sees the referral and what it points at, and nothing of it is visible to others.
    for reference in (f"ServiceRequest/{request_id}", patient, consent, f"QuestionnaireResponse/{qr}"):
        assert hub.partner.get(f"/fhir/{reference}").status_code == 200, reference
        assert hub.other_partner.get(f"/fhir/{reference}").status_code == 404, reference
    assert hub.other_partner.get(f"/fhir/Task/{task['id']}").status_code == 404

    queued = hub.outbox(f"Task/{task['id']}")
    assert [(o["kind"], o["organization_id"], o["state"]) for o in queued] == [
        ("referral.created", hub.partner.organization_id, "pending")
    ]
    assert queued[0]["payload"] == {
        "task": f"Task/{task['id']}",
        "serviceRequest": f"ServiceRequest/{request_id}",
    }
    assert f"consent permitted by {consent}" in audit_descriptions(hub.fhir)


def test_partner_sees_its_referrals_by_search(hub: Hub) -> None:
    patient = hub.patient()
    hub.consent(patient, permit(hub.partner.org_ref))
    request_id, _ = hub.referred(patient, hub.partner.org_ref)
    found = entries(hub.partner.get("/fhir/ServiceRequest"))
    assert [r["id"] for r in found] == [request_id]
    assert entries(hub.other_partner.get("/fhir/ServiceRequest")) == []


@pytest.mark.parametrize(
    ("provision", "performer", "extra", "allowed"),
    [
        pytest.param("partner", "opt_in", {}, True, id="permit-for-the-partner"),
        pytest.param("service", "opt_in", {}, True, id="permit-naming-the-service"),
        pytest.param("other", "opt_in", {}, False, id="permit-for-another-partner"),
        pytest.param("partner", "opt_in", {"period": {"end": "2020-01-01"}}, False, id="expired"),
        pytest.param("partner", "opt_in", {"status": "draft"}, False, id="draft"),
        pytest.param("deny", "opt_in", {}, False, id="deny"),
        pytest.param("nested", "opt_in", {}, False, id="nested-deny-exception"),
        pytest.param("nested-other", "opt_in", {}, True, id="nested-exception-for-someone-else"),
        pytest.param("partner", "org", {}, True, id="organization-performer-is-opt-in"),
        pytest.param("anyone", "org", {}, False, id="blanket-permit-is-not-enough-for-opt-in"),
        pytest.param("deny", "opt_out", {}, False, id="opt-out-with-deny"),
        pytest.param("partner", "opt_out", {}, True, id="opt-out-with-permit"),
        pytest.param("deny-inactive", "opt_out", {}, True, id="opt-out-with-inactive-deny"),
    ],
)
def test_consent_cases(
    hub: Hub, provision: str, performer: str, extra: dict[str, Any], allowed: bool
) -> None:
    patient = hub.patient()
    partner, other = hub.partner.org_ref, hub.other_partner.org_ref
    status = extra.pop("status", "active")
    shapes: dict[str, dict[str, Any]] = {
        "partner": permit(partner, **extra),
        "service": permit(hub.opt_in),
        "other": permit(other),
        "deny": deny(partner),
        "deny-inactive": deny(partner),
        "anyone": {"type": "permit"},
        "nested": permit(partner, provision=[deny(hub.opt_in)]),
        "nested-other": permit(partner, provision=[deny(other)]),
    }
    if provision == "deny-inactive":
        status = "inactive"
    hub.consent(patient, shapes[provision], status=status)
    target = {"opt_in": hub.opt_in, "opt_out": hub.opt_out, "org": partner}[performer]
    response = hub.refer(patient, target)
    if allowed:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "business-rule"
    assert issue["diagnostics"].startswith("consent check failed: ")
    assert "Doe" not in response.text
    assert "9000000009" not in response.text
    # Nothing stored: no ServiceRequest, no Task.
    assert _ids(hub, "ServiceRequest") == []
    assert _ids(hub, "Task") == []
    assert any(d.startswith("consent check failed") for d in audit_descriptions(hub.fhir))


def test_opt_out_without_any_consent_is_allowed(hub: Hub) -> None:
    patient = hub.patient()
    _, task = hub.referred(patient, hub.opt_out)
    assert task["owner"] == {"reference": hub.partner.org_ref}
    assert "opt-out: no deny" in audit_descriptions(hub.fhir)


def test_opt_in_without_any_consent_is_refused(hub: Hub) -> None:
    response = hub.refer(hub.patient(), hub.opt_in)
    assert response.status_code == 422
    assert "opt-in service requires an active permit Consent" in response.json()["issue"][0]["diagnostics"]


def test_r4_example_consent_without_root_type_is_accepted(hub: Hub, fixtures_dir: Any) -> None:
    import json

    example = json.loads((fixtures_dir / "fhir-r4-core" / "Consent-consent-example-basic.json").read_text())
    patient = hub.patient()
    for key in ("id", "meta", "text", "sourceAttachment", "organization", "performer"):
        example.pop(key, None)
    example["patient"] = {"reference": patient}
    created = hub.clinic.post("/fhir/Consent", json=example)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"status": "draft"}, "ServiceRequest.status"),
        ({"intent": "proposal"}, "ServiceRequest.intent"),
        (
            {"performer": [{"reference": "Organization/a"}, {"reference": "Organization/b"}]},
            "ServiceRequest.performer",
        ),
        ({"performer": [{"reference": "HealthcareService/missing"}]}, "ServiceRequest.performer[0]"),
        ({"performer": [{"reference": "Practitioner/x"}]}, "ServiceRequest.performer[0]"),
        ({"requester": {"reference": "Organization/someone-else"}}, "ServiceRequest.requester"),
    ],
)
def test_malformed_referrals_are_refused(hub: Hub, change: dict[str, Any], expression: str) -> None:
    patient = hub.patient()
    response = hub.refer(patient, hub.opt_out, **change)
    assert response.status_code == 422, response.text
    assert expression in [x for i in response.json()["issue"] for x in i.get("expression", [])]
    assert _ids(hub, "ServiceRequest") == []


def test_inactive_service_is_refused(hub: Hub) -> None:
    service = ok(hub.clinic.get(f"/fhir/{hub.opt_out}"))
    ok(hub.admin.put(f"/fhir/{hub.opt_out}", json={**service, "active": False}))
    response = hub.refer(hub.patient(), hub.opt_out)
    assert response.status_code == 422
    assert "not an active entry" in response.json()["issue"][0]["diagnostics"]


def test_clinic_cannot_refer_or_consent_for_another_clinics_patient(hub: Hub) -> None:
    other_clinic = hub.fhir.client("clinic")
    theirs = hub.patient(client=other_clinic)
    response = hub.refer(theirs, hub.opt_out)
    assert response.status_code == 422
    assert "reference not found" in response.json()["issue"][0]["diagnostics"]
    missing = hub.refer("Patient/does-not-exist", hub.opt_out)
    assert missing.status_code == 422
    # Same message shape for "not yours" and "not there": no existence oracle.
    assert (
        response.json()["issue"][0]["diagnostics"].split("(")[0]
        == missing.json()["issue"][0]["diagnostics"].split("(")[0]
    )
    consent = hub.clinic.post(
        "/fhir/Consent",
        json={
            "resourceType": "Consent",
            "status": "active",
            "scope": {"text": "privacy"},
            "category": [{"text": "consent"}],
            "patient": {"reference": theirs},
            "policyRule": {"text": "local"},
            "provision": permit(hub.partner.org_ref),
        },
    )
    assert consent.status_code == 422


def test_clinic_authors_only_as_itself(hub: Hub) -> None:
    patient = hub.patient()
    wrong = hub.assessment(patient, author=hub.partner.org_ref)
    assert wrong.status_code == 422
    assert wrong.json()["issue"][0]["expression"] == ["QuestionnaireResponse.author"]
    # A PractitionerRole of the clinic may author; one claiming another organisation may not be made.
    role = ok(
        hub.clinic.post(
            "/fhir/PractitionerRole",
            json={"resourceType": "PractitionerRole", "organization": {"reference": hub.clinic.org_ref}},
        ),
        201,
    )["id"]
    bad_role = hub.clinic.post(
        "/fhir/PractitionerRole",
        json={"resourceType": "PractitionerRole", "organization": {"reference": hub.partner.org_ref}},
    )
    assert bad_role.status_code == 422
    hub.consent(patient, permit(hub.partner.org_ref))
    created = hub.refer(patient, hub.opt_in, requester={"reference": f"PractitionerRole/{role}"})
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("identifier", "status"),
    [
        ([{"system": NHS, "value": "9000000009"}], 201),
        ([{"system": "https://clinic.example/mrn", "value": "A123"}], 201),
        ([{"system": NHS, "value": "9000000001"}], 422),
        (None, 422),
    ],
)
def test_patient_needs_nhs_number_or_local_identifier(
    hub: Hub, identifier: list[dict[str, str]] | None, status: int
) -> None:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": "Doe"}]}
    if identifier is not None:
        body["identifier"] = identifier
    response = hub.clinic.post("/fhir/Patient", json=body)
    assert response.status_code == status, response.text
    assert "9000000001" not in response.text


def test_clients_cannot_create_tasks(hub: Hub) -> None:
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    assert hub.clinic.post("/fhir/Task", json=task).status_code == 403
    assert hub.partner.post("/fhir/Task", json=task).status_code == 403
    # PUT never creates clinical records; an unknown id answers as any unknown id does.
    assert hub.clinic.put("/fhir/Task/mine", json={**task, "id": "mine"}).status_code == 404


def test_transaction_referral_with_urn_references(hub: Hub) -> None:
    """The way most integrations send it: Patient, Consent, assessment and referral in one transaction."""
    patient_urn = "urn:uuid:6b1a3c39-1b7e-4d7a-9d0e-3f5d2b1c0a01"
    consent_urn = "urn:uuid:6b1a3c39-1b7e-4d7a-9d0e-3f5d2b1c0a02"
    body = {**referral_body(patient_urn, hub.opt_in, hub.clinic.org_ref)}
    body["supportingInfo"] = [{"reference": consent_urn}]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            # The referral comes first: the hub must still create what it depends on before it.
            {"resource": body, "request": {"method": "POST", "url": "ServiceRequest"}},
            {
                "fullUrl": consent_urn,
                "resource": consent_body(patient_urn, permit(hub.partner.org_ref), hub.clinic.org_ref),
                "request": {"method": "POST", "url": "Consent"},
            },
            {
                "fullUrl": patient_urn,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS, "value": "9434765919"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = ok(hub.clinic.post("/fhir", json=bundle))
    assert [e["response"]["status"] for e in response["entry"]] == ["201 Created"] * 3
    request_id = response["entry"][0]["resource"]["id"]
    tasks = entries(hub.partner.get(f"/fhir/Task?focus=ServiceRequest/{request_id}"))
    assert len(tasks) == 1
    patient_id = response["entry"][2]["resource"]["id"]
    assert tasks[0]["for"] == {"reference": f"Patient/{patient_id}"}
    assert hub.partner.get(f"/fhir/Patient/{patient_id}").status_code == 200


def test_refused_transaction_referral_stores_nothing(hub: Hub) -> None:
    patient_urn = "urn:uuid:6b1a3c39-1b7e-4d7a-9d0e-3f5d2b1c0a03"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS, "value": "9434765927"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": referral_body(patient_urn, hub.opt_in, hub.clinic.org_ref),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }
    response = hub.clinic.post("/fhir", json=bundle)
    assert response.status_code == 422, response.text
    assert "consent check failed" in response.json()["issue"][0]["diagnostics"]
    assert _ids(hub, "Patient") == []
    assert _ids(hub, "ServiceRequest") == []

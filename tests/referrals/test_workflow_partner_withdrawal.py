"""A partner records that the person withdrew, over HTTP (CONTRACT.md "What counts as consent").

A partner client with ``Consent.c`` creates a deny Consent naming only itself for a Patient it holds a
referral for: at once its open Task is cancelled, its access removed, ``consent.withdrawn`` queued and
the withdrawal audited; the referring clinic sees the deny and the cancelled Task. Nothing else a partner
writes as a Consent is accepted.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.referrals._workflow_hub import (
    Hub,
    actor,
    audit_descriptions,
    consent_body,
    entries,
    ok,
    permit,
)
from tests.support.clients import FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _withdrawal(hub: Hub, patient: str, *actors: str, role: str = "IRCP", **extra: Any) -> dict[str, Any]:
    provision = {"type": "deny", "actor": [actor(a, role) for a in actors or (hub.partner.org_ref,)]}
    body = consent_body(patient, provision, hub.partner.org_ref, **extra)
    body["performer"] = [{"reference": patient}]
    return body


def _referral(hub: Hub) -> tuple[str, str, str, dict[str, Any]]:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref))
    request_id, task = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    return patient, consent, request_id, task


def test_a_partner_records_a_withdrawal_and_it_takes_effect_at_once(hub: Hub) -> None:
    patient, consent, request_id, task = _referral(hub)
    ok(hub.partner.put(f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"}))

    created = ok(hub.partner.post("/fhir/Consent", json=_withdrawal(hub, patient, role="CST")), 201)
    withdrawal = f"Consent/{created['id']}"

    # The partner: its Task is cancelled, the referral's data gone, its own Consent still readable.
    kept = ok(hub.partner.get(f"/fhir/Task/{task['id']}"))
    assert kept["status"] == "cancelled"
    assert kept["statusReason"] == {"text": "consent withdrawn"}
    for reference in (patient, consent, f"ServiceRequest/{request_id}"):
        assert hub.partner.get(f"/fhir/{reference}").status_code == 404, reference
    assert ok(hub.partner.get(f"/fhir/{withdrawal}"))["provision"]["type"] == "deny"
    # The clinic: reads the deny, finds it by patient, and sees the cancelled Task and revoked referral.
    assert ok(hub.clinic.get(f"/fhir/{withdrawal}"))["id"] == created["id"]
    found = {c["id"] for c in entries(hub.clinic.get(f"/fhir/Consent?patient={patient}"))}
    assert created["id"] in found
    assert ok(hub.clinic.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "revoked"
    # The notice to the partner is queued with the change, ids only; the referral's own notice is dropped.
    queued = hub.outbox(f"Task/{task['id']}")
    partner, clinic = hub.partner.organization_id, hub.clinic.organization_id
    assert [(o["kind"], o["organization_id"], o["state"]) for o in queued] == [
        ("referral.created", partner, "cancelled"),
        ("task.updated", clinic, "pending"),  # the clinic's notice of the accept still goes
        ("consent.withdrawn", partner, "pending"),
    ]
    assert queued[-1]["payload"] == {"task": f"Task/{task['id']}"}
    assert any(d.startswith("consent withdrawn") for d in audit_descriptions(hub.fhir))
    # The deny stands for new referrals to that partner too; it reopens nothing.
    refused = hub.refer(patient, hub.opt_in)
    assert refused.status_code == 422
    assert f"{withdrawal} denies disclosure" in refused.json()["issue"][0]["diagnostics"]


def test_a_withdrawal_for_one_partner_leaves_another_alone(hub: Hub) -> None:
    patient, _, _, task = _referral(hub)
    other_service = ok(
        hub.admin.post(
            "/fhir/HealthcareService",
            json={
                "resourceType": "HealthcareService",
                "active": True,
                "providedBy": {"reference": hub.other_partner.org_ref},
            },
        ),
        201,
    )["id"]
    hub.consent(patient, permit(hub.other_partner.org_ref))
    _, other_task = hub.referred(patient, f"HealthcareService/{other_service}")
    created = ok(hub.partner.post("/fhir/Consent", json=_withdrawal(hub, patient)), 201)
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert ok(hub.other_partner.get(f"/fhir/Task/{other_task['id']}"))["status"] == "requested"
    assert hub.other_partner.get(f"/fhir/{patient}").status_code == 200
    assert hub.other_partner.get(f"/fhir/Consent/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        pytest.param({"provision": "permit"}, "Consent.provision.type", id="a-permit"),
        pytest.param({"status": "draft"}, "Consent.status", id="not-active"),
        pytest.param({"scope": "research"}, "Consent.scope", id="another-scope"),
        pytest.param({"actors": "other"}, "Consent.provision.actor", id="naming-another-partner"),
        pytest.param({"actors": "both"}, "Consent.provision.actor", id="naming-itself-and-another"),
        pytest.param({"actors": "none"}, "Consent.provision.actor", id="naming-no-one"),
        pytest.param({"purpose": True}, "Consent.provision.purpose", id="narrowed"),
        pytest.param({"organization": "clinic"}, "Consent.organization[0]", id="as-the-clinic"),
    ],
)
def test_a_partner_may_create_no_other_consent(hub: Hub, change: dict[str, Any], expression: str) -> None:
    patient, _, _, task = _referral(hub)
    body = _withdrawal(hub, patient)
    if change.get("provision") == "permit":
        body["provision"]["type"] = "permit"
    if "status" in change:
        body["status"] = change["status"]
    if "scope" in change:
        body["scope"]["coding"][0]["code"] = change["scope"]
    actors = {
        "other": [actor(hub.other_partner.org_ref)],
        "both": [actor(hub.partner.org_ref), actor(hub.other_partner.org_ref)],
        "none": [],
    }
    if "actors" in change:
        body["provision"]["actor"] = actors[change["actors"]]
        if not body["provision"]["actor"]:
            del body["provision"]["actor"]  # a deny naming no one would stop every partner
    if change.get("purpose"):
        body["provision"]["purpose"] = [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}
        ]
    if change.get("organization"):
        body["organization"] = [{"reference": hub.clinic.org_ref}]
    response = hub.partner.post("/fhir/Consent", json=body)
    assert response.status_code == 422, response.text
    issues = response.json()["issue"]
    assert expression in [x for i in issues for x in i.get("expression", [])]
    assert any("a partner may record only a withdrawal" in i["diagnostics"] for i in issues) or (
        expression.startswith("Consent.organization")
    )
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "requested"
    assert hub.partner.get(f"/fhir/{patient}").status_code == 200


def test_a_partner_records_withdrawals_only_for_its_own_referrals(hub: Hub) -> None:
    theirs = hub.patient()  # no referral to this partner
    response = hub.partner.post("/fhir/Consent", json=_withdrawal(hub, theirs))
    assert response.status_code == 422, response.text
    assert "reference not found" in response.json()["issue"][0]["diagnostics"]
    # Another partner's referral is not this partner's either.
    patient, _, _, _ = _referral(hub)
    body = _withdrawal(hub, patient, hub.other_partner.org_ref)
    body["organization"] = [{"reference": hub.other_partner.org_ref}]
    assert hub.other_partner.post("/fhir/Consent", json=body).status_code == 422


def test_a_partner_needs_the_consent_create_scope_and_never_updates_or_deletes(hub: Hub) -> None:
    patient, consent, _, _ = _referral(hub)
    reader = hub.fhir.client("partner", hub.partner.organization_id, scopes="system/*.rs system/Task.u")
    denied = reader.post("/fhir/Consent", json=_withdrawal(hub, patient))
    assert denied.status_code == 403, denied.text
    # The clinic's Consent, which the partner can read, is not the partner's to change or delete.
    body = ok(hub.partner.get(f"/fhir/{consent}"))
    assert hub.partner.put(f"/fhir/{consent}", json={**body, "status": "inactive"}).status_code == 403
    assert hub.partner.delete(f"/fhir/{consent}").status_code == 403
    created = ok(hub.partner.post("/fhir/Consent", json=_withdrawal(hub, patient)), 201)
    mine = ok(hub.partner.get(f"/fhir/Consent/{created['id']}"))
    assert (
        hub.partner.put(f"/fhir/Consent/{created['id']}", json={**mine, "status": "inactive"}).status_code
        == 403
    )
    assert hub.partner.delete(f"/fhir/Consent/{created['id']}").status_code == 403

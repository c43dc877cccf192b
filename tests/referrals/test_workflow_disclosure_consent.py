"""What counts as a disclosure consent, over HTTP (CONTRACT.md "What counts as consent", issue 9).

Each rule alone refuses a referral with 422 naming the rule and the Consent, stores nothing and is audited;
the same rules hold in a transaction, when a referral is written again, and when a Consent changes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.referrals._workflow_hub import (
    NHS,
    Hub,
    actor,
    audit_descriptions,
    consent_body,
    deny,
    entries,
    ok,
    permit,
    referral_body,
)
from tests.support.clients import FhirClients

SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _scope(code: str) -> dict[str, Any]:
    return {"scope": {"coding": [{"system": SCOPE, "code": code}]}}


def _refused(hub: Hub, patient: str, target: str, **changes: Any) -> str:
    """Refer, expect the consent refusal, check nothing was stored; returns the diagnostics."""
    response = hub.refer(patient, target, **changes)
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "business-rule"
    diagnostics: str = issue["diagnostics"]
    assert diagnostics.startswith("consent check failed: ")
    assert entries(hub.clinic.get("/fhir/ServiceRequest")) == []
    assert entries(hub.clinic.get("/fhir/Task")) == []
    assert any(d.startswith("consent check failed") for d in audit_descriptions(hub.fhir))
    return diagnostics


@pytest.mark.parametrize("scope", ["research", "treatment", "adr"])
def test_a_consent_of_another_scope_never_unlocks(hub: Hub, scope: str) -> None:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref), **_scope(scope))
    diagnostics = _refused(hub, patient, hub.opt_in)
    assert diagnostics == (
        f"consent check failed: {consent} has scope {scope}: only a patient-privacy Consent can permit a "
        "disclosure"
    )


def test_a_permit_without_date_time_does_not_unlock(hub: Hub) -> None:
    patient = hub.patient()
    body = consent_body(patient, permit(hub.partner.org_ref), hub.clinic.org_ref)
    del body["dateTime"]
    consent = f"Consent/{ok(hub.clinic.post('/fhir/Consent', json=body), 201)['id']}"
    assert f"{consent} has no dateTime" in _refused(hub, patient, hub.opt_in)


def test_a_permit_naming_the_partner_as_custodian_does_not_unlock(hub: Hub) -> None:
    patient = hub.patient()
    hub.consent(patient, {"type": "permit", "actor": [actor(hub.partner.org_ref, "CST")]})
    assert "not in a recipient role" in _refused(hub, patient, hub.opt_in)


def test_a_permit_for_research_only_does_not_unlock(hub: Hub) -> None:
    patient = hub.patient()
    research = [{"system": ACT_REASON, "code": "HRESCH"}]
    hub.consent(patient, permit(hub.partner.org_ref, purpose=research))
    assert "does not permit disclosure" in _refused(hub, patient, hub.opt_in)


def test_a_permit_without_evidence_unlocks_and_the_warning_is_audited(hub: Hub) -> None:
    patient = hub.patient()
    body = consent_body(patient, permit(hub.partner.org_ref), hub.clinic.org_ref)
    del body["sourceAttachment"]
    consent = f"Consent/{ok(hub.clinic.post('/fhir/Consent', json=body), 201)['id']}"
    hub.referred(patient, hub.opt_in)
    permitted = [d for d in audit_descriptions(hub.fhir) if d.startswith(f"consent permitted by {consent}")]
    assert len(permitted) == 1
    assert "records no evidence of the consent" in permitted[0]


@pytest.mark.parametrize("role", ["CST", "AUT", "IRCP"])
def test_a_deny_naming_the_partner_in_any_role_refuses(hub: Hub, role: str) -> None:
    patient = hub.patient()
    hub.consent(patient, permit(hub.partner.org_ref))
    denial = hub.consent(patient, {"type": "deny", "actor": [actor(hub.partner.org_ref, role)]})
    for target in (hub.opt_in, hub.opt_out):
        assert f"{denial} denies disclosure to {hub.partner.org_ref}" in _refused(hub, patient, target)


def test_a_deny_in_a_research_consent_still_refuses_unless_its_purpose_is_research(hub: Hub) -> None:
    patient = hub.patient()
    hub.consent(patient, deny(), **_scope("research"))
    assert "provision.purpose" in _refused(hub, patient, hub.opt_out)

    other = hub.patient("9434765919")
    hub.consent(other, deny(purpose=[{"system": ACT_REASON, "code": "HRESCH"}]), **_scope("research"))
    hub.referred(other, hub.opt_out)


def test_a_transaction_with_a_research_consent_stores_nothing(hub: Hub) -> None:
    patient_urn = "urn:uuid:8f0a7c1e-51d3-4c1b-9a39-0d5e3e2b7a01"
    consent_urn = "urn:uuid:8f0a7c1e-51d3-4c1b-9a39-0d5e3e2b7a02"
    consent = {
        **consent_body(patient_urn, permit(hub.partner.org_ref), hub.clinic.org_ref),
        **_scope("research"),
    }
    referral = {**referral_body(patient_urn, hub.opt_in, hub.clinic.org_ref)}
    referral["supportingInfo"] = [{"reference": consent_urn}]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": referral, "request": {"method": "POST", "url": "ServiceRequest"}},
            {"fullUrl": consent_urn, "resource": consent, "request": {"method": "POST", "url": "Consent"}},
            {
                "fullUrl": patient_urn,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": NHS, "value": "9434765927"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    response = hub.clinic.post("/fhir", json=bundle)
    assert response.status_code == 422, response.text
    assert "only a patient-privacy Consent can permit a disclosure" in response.text
    for resource_type in ("Patient", "Consent", "ServiceRequest", "Task"):
        assert entries(hub.clinic.get(f"/fhir/{resource_type}")) == [], resource_type


def test_a_custodian_deny_written_later_withdraws_the_referral(hub: Hub) -> None:
    # Re-evaluation after a Consent write uses the same rules as the referral did.
    patient = hub.patient()
    hub.consent(patient, permit(hub.partner.org_ref))
    request_id, task = hub.referred(patient, hub.opt_in)
    hub.consent(patient, {"type": "deny", "actor": [actor(hub.partner.org_ref, "CST")]})
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 404


def test_writing_a_referral_again_rechecks_consent(hub: Hub) -> None:
    patient = hub.patient()
    # The permit lapses a few seconds from now: long enough for the referral and one edit to be written
    # inside it on a loaded machine, then the test waits until it has lapsed.
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    hub.consent(patient, permit(hub.partner.org_ref, period={"end": end.isoformat().replace("+00:00", "Z")}))
    request_id, _ = hub.referred(patient, hub.opt_in)
    request = ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))
    ok(hub.clinic.put(f"/fhir/ServiceRequest/{request_id}", json={**request, "note": [{"text": "edit"}]}))
    # Past the end (the expiry sweep runs in the worker, not here).
    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 1.2)
    request = ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))
    response = hub.clinic.put(f"/fhir/ServiceRequest/{request_id}", json={**request, "note": [{"text": "x"}]})
    assert response.status_code == 422, response.text
    assert "is not in force now" in response.json()["issue"][0]["diagnostics"]
    # Revoking it is still the clinic's to do.
    ok(hub.clinic.put(f"/fhir/ServiceRequest/{request_id}", json={**request, "status": "revoked"}))

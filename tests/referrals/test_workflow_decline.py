"""A recorded decline of peer support is honoured, over HTTP (CONTRACT.md "What counts as consent").

The latest completed needs assessment that records ``peer-support-outcome = declined`` stops referrals to
peer-support services (opt-out, and opt-in on an older permit) until a newer permit names the partner;
a decline recorded after a referral withdraws it.
"""

from __future__ import annotations

from typing import Any

import pytest

import fhir_profiles as fp
from tests.referrals._workflow_hub import Hub, audit_descriptions, entries, ok, permit
from tests.support.assessment import CANONICAL
from tests.support.clients import FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _service(hub: Hub, model: str, category: str = "peer-support") -> str:
    body = {
        "resourceType": "HealthcareService",
        "active": True,
        "name": f"{category} ({model})",
        "providedBy": {"reference": hub.partner.org_ref},
        "category": [{"coding": [{"system": fp.SERVICE_CATEGORY_SYSTEM, "code": category}]}],
        "extension": [{"url": fp.CONSENT_MODEL_URL, "valueCode": model}],
    }
    return f"HealthcareService/{ok(hub.admin.post('/fhir/HealthcareService', json=body), 201)['id']}"


def _assessment(hub: Hub, patient: str, outcome: str, authored: str, status: str = "completed") -> str:
    body: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": status,
        "subject": {"reference": patient},
        "author": {"reference": hub.clinic.org_ref},
        "authored": authored,
        "item": [
            {
                "linkId": "peer-support",
                "item": [
                    {"linkId": "peer-support-offered", "answer": [{"valueBoolean": True}]},
                    {
                        "linkId": "peer-support-outcome",
                        "answer": [
                            {"valueCoding": {"system": fp.PEER_SUPPORT_OUTCOME_SYSTEM, "code": outcome}}
                        ],
                    },
                ],
            }
        ],
    }
    return f"QuestionnaireResponse/{ok(hub.clinic.post('/fhir/QuestionnaireResponse', json=body), 201)['id']}"


def test_a_decline_stops_an_opt_out_peer_support_referral(hub: Hub) -> None:
    peer = _service(hub, "opt-out")
    patient = hub.patient()
    response = _assessment(hub, patient, "declined", "2026-11-25T10:00:00Z")
    refused = hub.refer(patient, peer)
    assert refused.status_code == 422, refused.text
    diagnostics = refused.json()["issue"][0]["diagnostics"]
    assert diagnostics.startswith(f"consent check failed: the patient declined peer support in {response}")
    assert entries(hub.clinic.get("/fhir/ServiceRequest")) == []
    assert any("declined peer support" in d for d in audit_descriptions(hub.fhir))
    # Other services of the same partner are not peer support: the decline does not touch them.
    hub.referred(patient, _service(hub, "opt-out", "housing"))


def test_a_newer_permit_naming_the_partner_lifts_the_decline(hub: Hub) -> None:
    peer = _service(hub, "opt-out")
    patient = hub.patient()
    _assessment(hub, patient, "declined", "2026-11-25T10:00:00Z")
    older = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-24T10:00:00Z")
    refused = hub.refer(patient, peer)
    assert refused.status_code == 422
    assert f"{older} was given before that decline" in refused.json()["issue"][0]["diagnostics"]
    newer = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-26T10:00:00Z")
    request_id, _ = hub.referred(patient, peer)
    assert f"consent permitted by {newer}" in audit_descriptions(hub.fhir)
    assert hub.partner.get(f"/fhir/{newer}").status_code == 200  # the referral rests on it
    assert request_id


def test_an_opt_in_peer_support_referral_needs_a_permit_newer_than_the_decline(hub: Hub) -> None:
    peer = _service(hub, "opt-in")
    patient = hub.patient()
    hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-20T10:00:00Z")
    _assessment(hub, patient, "declined", "2026-11-25T10:00:00Z")
    assert hub.refer(patient, peer).status_code == 422


def test_only_the_latest_completed_assessment_counts(hub: Hub) -> None:
    peer = _service(hub, "opt-out")
    patient = hub.patient()
    _assessment(hub, patient, "declined", "2026-11-20T10:00:00Z")
    _assessment(hub, patient, "accepted", "2026-11-25T10:00:00Z")
    # An unfinished response records nothing yet.
    _assessment(hub, patient, "declined", "2026-11-28T10:00:00Z", status="in-progress")
    hub.referred(patient, peer)

    other = hub.patient("9434765919")
    _assessment(hub, other, "accepted", "2026-11-20T10:00:00Z")
    _assessment(hub, other, "declined", "2026-11-25T10:00:00Z")
    assert hub.refer(other, peer).status_code == 422


def test_a_decline_recorded_after_the_referral_withdraws_it(hub: Hub) -> None:
    peer = _service(hub, "opt-out")
    housing = _service(hub, "opt-out", "housing")
    patient = hub.patient()
    request_id, task = hub.referred(patient, peer)
    _, housing_task = hub.referred(patient, housing)
    ok(hub.partner.put(f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"}))
    _assessment(hub, patient, "declined", "2026-11-25T10:00:00Z")
    cancelled = ok(hub.clinic.get(f"/fhir/Task/{task['id']}"))
    assert cancelled["status"] == "cancelled"
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "revoked"
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 404
    assert [o["kind"] for o in hub.outbox(f"Task/{task['id']}")][-1] == "consent.withdrawn"
    assert ok(hub.partner.get(f"/fhir/Task/{housing_task['id']}"))["status"] == "requested"

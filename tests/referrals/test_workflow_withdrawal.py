"""Withdrawing consent over HTTP: open Tasks stop, the partner loses the data, keeps its Task (issue 4)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.referrals._workflow_hub import Hub, audit_descriptions, consent_body, deny, ok, permit
from tests.support.clients import FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _referral(hub: Hub, target: str | None = None) -> tuple[str, str, str, dict[str, Any]]:
    """(patient, consent, ServiceRequest id, Task) for a permitted referral."""
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref))
    request_id, task = hub.referred(patient, target or hub.opt_in, supportingInfo=[{"reference": consent}])
    return patient, consent, request_id, task


def _set_status(hub: Hub, consent: str, status: str) -> None:
    body = ok(hub.clinic.get(f"/fhir/{consent}"))
    ok(hub.clinic.put(f"/fhir/{consent}", json={**body, "status": status}))


def _partner_reach(hub: Hub, *references: str) -> list[int]:
    return [hub.partner.get(f"/fhir/{r}").status_code for r in references]


@pytest.mark.parametrize("status", ["inactive", "entered-in-error", "rejected"])
def test_consent_made_inactive_cancels_the_open_task(hub: Hub, status: str) -> None:
    patient, consent, request_id, task = _referral(hub)
    ok(hub.partner.put(f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"}))
    assert _partner_reach(hub, patient, consent, f"ServiceRequest/{request_id}") == [200, 200, 200]

    _set_status(hub, consent, status)

    kept = ok(hub.partner.get(f"/fhir/Task/{task['id']}"))
    assert kept["status"] == "cancelled"
    assert kept["statusReason"] == {"text": "consent withdrawn"}
    assert _partner_reach(hub, patient, consent, f"ServiceRequest/{request_id}") == [404, 404, 404]
    assert entries_total(hub, f"Task?focus=ServiceRequest/{request_id}") == 1
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "revoked"
    withdrawn = [o for o in hub.outbox(f"Task/{task['id']}") if o["kind"] == "consent.withdrawn"]
    assert [(o["organization_id"], o["payload"]) for o in withdrawn] == [
        (hub.partner.organization_id, {"task": f"Task/{task['id']}"})
    ]
    assert any(d.startswith("consent withdrawn") for d in audit_descriptions(hub.fhir))
    # Withdrawn is withdrawn: the partner can no longer move the Task.
    assert (
        hub.partner.put(f"/fhir/Task/{task['id']}", json={**kept, "status": "in-progress"}).status_code == 422
    )


def entries_total(hub: Hub, query: str) -> int:
    return int(ok(hub.partner.get(f"/fhir/{query}"))["total"])


def test_a_new_deny_withdraws_consent(hub: Hub) -> None:
    patient, _, request_id, task = _referral(hub)
    hub.consent(patient, deny(hub.partner.org_ref))
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert hub.partner.get(f"/fhir/{patient}").status_code == 404
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "revoked"


def test_deny_for_another_partner_changes_nothing(hub: Hub) -> None:
    patient, consent, _, task = _referral(hub)
    hub.consent(patient, deny(hub.other_partner.org_ref))
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "requested"
    assert _partner_reach(hub, patient, consent) == [200, 200]
    assert [o["kind"] for o in hub.outbox(f"Task/{task['id']}")] == ["referral.created"]


def test_completed_referral_keeps_its_task_but_loses_the_data(hub: Hub) -> None:
    patient, consent, request_id, task = _referral(hub)
    for status in ("accepted", "completed"):
        task = ok(hub.partner.put(f"/fhir/Task/{task['id']}", json={**task, "status": status}))
    _set_status(hub, consent, "inactive")
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "completed"
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "completed"
    assert _partner_reach(hub, patient, consent, f"ServiceRequest/{request_id}") == [404, 404, 404]


def test_opt_out_referral_is_withdrawn_by_a_later_deny(hub: Hub) -> None:
    patient = hub.patient()
    request_id, task = hub.referred(patient, hub.opt_out)
    deny_id = ok(
        hub.clinic.post("/fhir/Consent", json=consent_body(patient, deny(hub.opt_out), hub.clinic.org_ref)),
        201,
    )["id"]
    assert deny_id
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 404


def test_deleting_the_consent_withdraws_it(hub: Hub) -> None:
    patient, consent, _, task = _referral(hub)
    assert hub.clinic.delete(f"/fhir/{consent}").status_code == 204
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert hub.partner.get(f"/fhir/{patient}").status_code == 404


def test_referrals_elsewhere_survive_a_withdrawal_for_one_partner(hub: Hub) -> None:
    patient = hub.patient()
    for_a = hub.consent(patient, permit(hub.partner.org_ref))
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
    _, task_a = hub.referred(patient, hub.opt_in)
    _, task_b = hub.referred(patient, f"HealthcareService/{other_service}")
    _set_status(hub, for_a, "inactive")
    assert ok(hub.partner.get(f"/fhir/Task/{task_a['id']}"))["status"] == "cancelled"
    assert ok(hub.other_partner.get(f"/fhir/Task/{task_b['id']}"))["status"] == "requested"
    assert hub.other_partner.get(f"/fhir/{patient}").status_code == 200

"""Working a referral over HTTP: the partner moves its Task, the clinic follows or cancels (issue 4)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_profiles import TASK_BUSINESS_STATUS_SYSTEM
from tests.referrals._workflow_hub import Hub, ok, permit
from tests.support.clients import Client, FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


@pytest.fixture
def referral(hub: Hub) -> tuple[str, dict[str, Any]]:
    patient = hub.patient()
    hub.consent(patient, permit(hub.partner.org_ref))
    return hub.referred(patient, hub.opt_in)


def _put(client: Client, task: dict[str, Any], **changes: Any) -> Any:
    body = {k: v for k, v in {**task, **changes}.items() if v is not None}
    return client.put(f"/fhir/Task/{task['id']}", json=body)


def _move(client: Client, task: dict[str, Any], status: str, **changes: Any) -> dict[str, Any]:
    return ok(_put(client, task, status=status, **changes))


REASON = {"text": "no capacity this month"}


def test_whole_lifecycle_closes_the_loop(hub: Hub, referral: tuple[str, dict[str, Any]]) -> None:
    request_id, task = referral
    task = _move(hub.partner, task, "accepted")
    contacted = {"coding": [{"system": TASK_BUSINESS_STATUS_SYSTEM, "code": "contacted"}]}
    task = _move(hub.partner, task, "in-progress", businessStatus=contacted)
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "active"
    outcome = [{"type": {"text": "outcome"}, "valueString": "attended three sessions"}]
    task = _move(hub.partner, task, "completed", output=outcome)
    assert task["meta"]["versionId"] == "4"
    assert task["lastModified"] >= task["authoredOn"]

    as_clinic = ok(hub.clinic.get(f"/fhir/Task/{task['id']}"))
    assert as_clinic["status"] == "completed"
    assert as_clinic["output"] == outcome
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "completed"
    # The clinic follows its referrals by searching Tasks.
    done = ok(hub.clinic.get(f"/fhir/Task?requester={hub.clinic.org_ref}&status=completed"))
    assert [e["resource"]["id"] for e in done["entry"]] == [task["id"]]
    kinds = [(o["kind"], o["organization_id"]) for o in hub.outbox(f"Task/{task['id']}")]
    assert (
        kinds
        == [("referral.created", hub.partner.organization_id)]
        + [("task.updated", hub.clinic.organization_id)] * 3
    )


def test_partner_rejection_needs_a_reason_and_leaves_the_request_active(
    hub: Hub, referral: tuple[str, dict[str, Any]]
) -> None:
    request_id, task = referral
    refused = _put(hub.partner, task, status="rejected")
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["code"] == "business-rule"
    _move(hub.partner, task, "rejected", statusReason=REASON)
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "active"
    # Data minimisation: having declined, the partner keeps its Task but no longer sees the referral.
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 404
    assert hub.partner.get(f"/fhir/Task/{task['id']}").status_code == 200


@pytest.mark.parametrize(
    ("path", "who"),
    [
        (("completed",), "partner"),  # requested -> completed skips acceptance
        (("accepted", "requested"), "partner"),  # no going back
        (("in-progress",), "partner"),
        (("accepted",), "clinic"),  # only the partner accepts
        (("accepted", "completed", "in-progress"), "partner"),  # completed is final
    ],
)
def test_illegal_transitions_change_nothing(
    hub: Hub, referral: tuple[str, dict[str, Any]], path: tuple[str, ...], who: str
) -> None:
    _, task = referral
    *legal, last = path
    for status in legal:
        task = _move(hub.partner, task, status)
    client = hub.partner if who == "partner" else hub.clinic
    response = _put(client, task, status=last)
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["code"] == "business-rule"
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}")) == task


@pytest.mark.parametrize(
    "change",
    [
        {"owner": {"reference": "Organization/elsewhere"}},
        {"focus": {"reference": "ServiceRequest/other"}},
        {"for": {"reference": "Patient/other"}},
        {"requester": {"reference": "Organization/elsewhere"}},
        {"description": "rewritten"},
    ],
)
def test_partner_may_not_change_other_fields(
    hub: Hub, referral: tuple[str, dict[str, Any]], change: dict[str, Any]
) -> None:
    _, task = referral
    response = _put(hub.partner, task, status="accepted", **change)
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [f"Task.{next(iter(change))}"]
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "requested"


def test_unknown_business_status_code_is_refused_but_text_is_fine(
    hub: Hub, referral: tuple[str, dict[str, Any]]
) -> None:
    _, task = referral
    bogus = {"coding": [{"system": TASK_BUSINESS_STATUS_SYSTEM, "code": "teleported"}]}
    assert _put(hub.partner, task, status="accepted", businessStatus=bogus).status_code == 422
    _move(hub.partner, task, "accepted", businessStatus={"text": "called twice, left a message"})


def test_clinic_cancel_needs_a_reason_and_revokes_the_request(
    hub: Hub, referral: tuple[str, dict[str, Any]]
) -> None:
    request_id, task = referral
    assert _put(hub.clinic, task, status="cancelled").status_code == 422
    meddling = _put(hub.clinic, task, status="cancelled", statusReason=REASON, businessStatus={"text": "x"})
    assert meddling.status_code == 422
    _move(hub.clinic, task, "cancelled", statusReason=REASON)
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "revoked"
    # The partner keeps its (cancelled) Task but loses the referral's data.
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "cancelled"
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 404
    assert ("task.updated", hub.partner.organization_id) in [
        (o["kind"], o["organization_id"]) for o in hub.outbox(f"Task/{task['id']}")
    ]


def test_revoking_the_service_request_cancels_the_task(
    hub: Hub, referral: tuple[str, dict[str, Any]]
) -> None:
    request_id, task = referral
    request = ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))
    ok(hub.clinic.put(f"/fhir/ServiceRequest/{request_id}", json={**request, "status": "revoked"}))
    cancelled = ok(hub.partner.get(f"/fhir/Task/{task['id']}"))
    assert cancelled["status"] == "cancelled"
    assert cancelled["statusReason"] == {"text": "referral revoked by clinic"}
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"status": "completed"},
        {"performer": [{"reference": "Organization/elsewhere"}]},
        {"subject": {"reference": "Patient/other"}},
    ],
)
def test_clinic_cannot_reshape_a_referral(
    hub: Hub, referral: tuple[str, dict[str, Any]], change: dict[str, Any]
) -> None:
    request_id, _ = referral
    request = ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))
    response = hub.clinic.put(f"/fhir/ServiceRequest/{request_id}", json={**request, **change})
    assert response.status_code == 422, response.text


def test_other_partner_cannot_see_or_update_the_task(hub: Hub, referral: tuple[str, dict[str, Any]]) -> None:
    _, task = referral
    assert hub.other_partner.get(f"/fhir/Task/{task['id']}").status_code == 404
    assert _put(hub.other_partner, task, status="accepted").status_code == 404
    assert ok(hub.partner.get(f"/fhir/Task/{task['id']}"))["status"] == "requested"


def test_task_updates_honour_if_match(hub: Hub, referral: tuple[str, dict[str, Any]]) -> None:
    _, task = referral
    stale = hub.partner.put(
        f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"}, headers={"If-Match": 'W/"9"'}
    )
    assert stale.status_code == 412
    fresh = hub.partner.put(
        f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"}, headers={"If-Match": 'W/"1"'}
    )
    assert fresh.status_code == 200, fresh.text


def test_nobody_deletes_a_referral_task(hub: Hub, referral: tuple[str, dict[str, Any]]) -> None:
    # The Task is the hub's record of the referral: the clinic cancels it, it never deletes it.
    _, task = referral
    assert hub.clinic.delete(f"/fhir/Task/{task['id']}").status_code == 403
    assert hub.partner.delete(f"/fhir/Task/{task['id']}").status_code == 403
    assert ok(hub.clinic.get(f"/fhir/Task/{task['id']}"))["status"] == "requested"

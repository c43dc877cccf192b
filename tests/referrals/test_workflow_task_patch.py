"""A partner moves its referral Task with PATCH (JSON Patch): the Task state machine and the
partner's field limits apply exactly as to a PUT."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.referrals._workflow_hub import Hub, ok, permit
from tests.support.clients import Client, FhirClients


def _patch(client: Client, task_id: str, ops: list[dict[str, Any]], version: str) -> httpx.Response:
    return client.http.patch(
        f"/fhir/Task/{task_id}",
        content=json.dumps(ops),
        headers={
            "Authorization": f"Bearer {client.token}",
            "Content-Type": "application/json-patch+json",
            "If-Match": f'W/"{version}"',
        },
    )


def test_partner_accepts_by_patch_and_rules_still_apply(fhir: FhirClients) -> None:
    hub = Hub.build(fhir)
    patient = hub.patient()
    hub.consent(patient, permit(hub.partner.org_ref))
    _, task = hub.referred(patient, hub.opt_in)
    version = task["meta"]["versionId"]
    accept = [
        {"op": "test", "path": "/status", "value": "requested"},
        {"op": "replace", "path": "/status", "value": "accepted"},
    ]
    accepted = ok(_patch(hub.partner, task["id"], accept, version))
    assert accepted["status"] == "accepted"
    # Back to requested is not a Task transition: 422, as for a PUT.
    back = _patch(
        hub.partner,
        task["id"],
        [{"op": "replace", "path": "/status", "value": "requested"}],
        accepted["meta"]["versionId"],
    )
    assert back.status_code == 422, back.text
    # A partner may change only status and output, however the change arrives.
    owner = _patch(
        hub.partner,
        task["id"],
        [{"op": "replace", "path": "/owner/reference", "value": "Organization/x"}],
        accepted["meta"]["versionId"],
    )
    assert owner.status_code in (403, 422), owner.text
    # Another partner cannot see the Task at all.
    other = _patch(hub.other_partner, task["id"], accept, accepted["meta"]["versionId"])
    assert other.status_code == 404
    assert (
        ok(hub.clinic.get(f"/fhir/Task/{task['id']}"))["meta"]["versionId"] == accepted["meta"]["versionId"]
    )

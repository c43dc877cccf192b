"""A partner with a webhook receives its referral, signed; the clinic and operators see it go."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.delivery._delivery_world import add_endpoint, cli, drain, refer_with_consent, rotate_secret, rows
from tests.referrals._workflow_hub import Hub, ok
from tests.support.clients import FhirClients
from tests.support.receiver import Receiver, Reply


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _types(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle["entry"]]


def test_referral_reaches_a_webhook_signed_and_is_audited(hub: Hub, settings: Any) -> None:
    with Receiver.start() as rx:
        endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "webhook", rx.url("/hook"))
        secret = rotate_secret(hub.admin, endpoint)
        referral = refer_with_consent(hub)
        drain(hub.fhir.db, settings)
        [request] = rx.wait_for(1, timeout=5)
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "referral.created"
    assert payload["data"]["task"].endswith(f"/Task/{referral.task['id']}")
    bundle = payload["data"]["bundle"]
    assert bundle["type"] == "transaction"
    assert sorted(_types(bundle)) == ["Consent", "Patient", "ServiceRequest", "Task"]
    [row] = rows(hub.fhir.db, referral.task["id"])
    assert (row.state, row.attempts, row.adapter) == ("delivered", 1, "webhook")
    assert request.headers["webhook-id"] == row.message_id
    # The clinic sees where its referral's delivery stands, through the FHIR API.
    status = ok(hub.clinic.get(f"/fhir/Task/{referral.task['id']}/$delivery-status"))
    parts = {p["name"]: p for p in status["parameter"][0]["part"]}
    assert parts["state"]["valueCode"] == "delivered"
    # One disclosure AuditEvent names the recipient and the Patient.
    events = ok(hub.admin.get("/fhir/AuditEvent?subtype=disclosure"))["entry"]
    [event] = [e["resource"] for e in events]
    assert {"reference": hub.partner.org_ref} in [a["who"] for a in event["agent"]]
    assert any(e["what"]["reference"] == referral.patient for e in event["entity"])


def test_a_retry_keeps_the_webhook_id_and_honours_retry_after(hub: Hub, settings: Any) -> None:
    with Receiver.start() as rx:
        endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "webhook", rx.url("/hook"))
        secret = rotate_secret(hub.admin, endpoint)
        rx.script(Reply(503, {"Retry-After": "1"}))
        referral = refer_with_consent(hub)
        failed_at = datetime.now(UTC)
        drain(hub.fhir.db, settings, delivery_backoff_seconds=0.01)
        [row] = rows(hub.fhir.db, referral.task["id"])
        assert (row.state, row.attempts, row.last_status) == ("pending", 1, 503)
        # The receiver's Retry-After (1 s) is a floor under the 10 ms backoff.
        assert (row.due_at - failed_at).total_seconds() >= 1
        time.sleep(max(0.0, (row.due_at - datetime.now(UTC)).total_seconds()) + 0.05)
        drain(hub.fhir.db, settings)
        first, second = rx.wait_for(2, timeout=5)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    Webhook(secret).verify(second.body, second.headers)
    [row] = rows(hub.fhir.db, referral.task["id"])
    assert (row.state, row.attempts) == ("delivered", 2)


def test_a_refusal_is_dead_lettered_visible_and_replayable(hub: Hub, settings: Any) -> None:
    with Receiver.start() as rx:
        endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "webhook", rx.url("/hook"))
        rotate_secret(hub.admin, endpoint)
        rx.script(Reply(410))
        referral = refer_with_consent(hub)
        drain(hub.fhir.db, settings)
        [row] = rows(hub.fhir.db, referral.task["id"])
        assert (row.state, row.last_status) == ("dead", 410)
        dead = ok(hub.admin.get("/fhir/Task/$delivery-status?state=dead"))
        assert [p["part"][0]["valueString"] for p in dead["parameter"]] == [str(row.id)]
        env = {"WRAPAROUND_DATABASE_URL": hub.fhir.db.url}
        listed = cli(["deliveries", "list", "--state", "dead"], **env)
        assert listed.exit_code == 0, listed.output
        assert [json.loads(line)["id"] for line in listed.output.splitlines()] == [row.id]
        replayed = cli(["deliveries", "retry", str(row.id)], **env)
        assert replayed.exit_code == 0, replayed.output
        drain(hub.fhir.db, settings)
        assert len(rx.wait_for(2, timeout=5)) == 2
    [row] = rows(hub.fhir.db, referral.task["id"])
    assert row.state == "delivered"
    shown = cli(["deliveries", "show", str(row.id)], **env)
    outcomes = [a["outcome"] for a in json.loads(shown.output)["attempt"]]
    assert outcomes == ["permanent", "delivered"]


def test_withdrawal_before_sending_cancels_the_referral_and_sends_only_the_stop_notice(
    hub: Hub, settings: Any
) -> None:
    with Receiver.start() as rx:
        endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "webhook", rx.url("/hook"))
        secret = rotate_secret(hub.admin, endpoint)
        referral = refer_with_consent(hub)
        consent = ok(hub.clinic.get(f"/fhir/{referral.consent}"))
        ok(hub.clinic.put(f"/fhir/{referral.consent}", json={**consent, "status": "inactive"}))
        drain(hub.fhir.db, settings)
        [request] = rx.wait_for(1, timeout=5)
    notice = Webhook(secret).verify(request.body, request.headers)
    assert notice["type"] == "consent.withdrawn"
    assert "bundle" not in notice["data"] or _types(notice["data"]["bundle"]) == ["Task"]
    states = {r.kind: r.state for r in rows(hub.fhir.db, referral.task["id"])}
    assert states == {"referral.created": "cancelled", "consent.withdrawn": "delivered"}


def test_a_partner_without_an_endpoint_pulls(hub: Hub, settings: Any) -> None:
    referral = refer_with_consent(hub)
    drain(hub.fhir.db, settings)
    [row] = rows(hub.fhir.db, referral.task["id"])
    assert row.state == "pull"
    inbox = ok(hub.partner.get(f"/fhir/Task?owner={hub.partner.org_ref}&status=requested"))
    assert [e["resource"]["id"] for e in inbox["entry"]] == [referral.task["id"]]


def test_the_clinic_hears_when_the_partner_moves_the_task(hub: Hub, settings: Any) -> None:
    with Receiver.start() as rx:
        endpoint = add_endpoint(hub.admin, hub.clinic.organization_id, "webhook", rx.url("/clinic"))
        secret = rotate_secret(hub.admin, endpoint)
        referral = refer_with_consent(hub)
        task = ok(hub.partner.get(f"/fhir/Task/{referral.task['id']}"))
        ok(hub.partner.put(f"/fhir/Task/{task['id']}", json={**task, "status": "accepted"}))
        drain(hub.fhir.db, settings)
        [request] = rx.wait_for(1, timeout=5)
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "task.updated"
    assert event["data"]["taskStatus"] == "accepted"
    assert _types(event["data"]["bundle"]) == ["Task"]

"""When the permitting Consent's period ends, the worker's sweep stops the referral like a withdrawal."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from service.delivery.worker import Worker
from tests.delivery._delivery_world import add_endpoint, drain, rotate_secret, rows
from tests.referrals._workflow_hub import Hub, audit_descriptions, ok, permit
from tests.support.clients import FhirClients
from tests.support.receiver import Receiver


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.slow
def test_the_sweep_cancels_an_open_task_whose_consent_lapsed_and_tells_the_partner(
    hub: Hub, settings: Any
) -> None:
    patient = hub.patient()
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    lasting = hub.patient(nhs="9434765919")
    period = {"start": "2026-01-01", "end": _instant(ends)}
    consent = hub.consent(
        patient, permit(hub.partner.org_ref, period=period), dateTime="2026-11-30T10:00:00Z"
    )
    kept_consent = hub.consent(lasting, permit(hub.partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    with Receiver.start() as rx:
        endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "webhook", rx.url("/hook"))
        secret = rotate_secret(hub.admin, endpoint)
        request_id, task = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
        kept_id, kept_task = hub.referred(lasting, hub.opt_in, supportingInfo=[{"reference": kept_consent}])
        drain(hub.fhir.db, settings)
        assert len(rx.wait_for(2, timeout=5)) == 2
        # A period end at seconds precision covers that whole second (FHIR dateTime precision).
        time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 1.5)
        # The real worker loop, whose first iteration sweeps, then delivers what the sweep queued.
        worker = Worker(hub.fhir.db, settings.model_copy(update={"consent_sweep_seconds": 60}))
        stop = asyncio.Event()
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_until_complete, args=(worker.run(stop),))
        runner.start()
        try:
            requests = rx.wait_for(3, timeout=10)
        finally:
            loop.call_soon_threadsafe(stop.set)
            runner.join(timeout=20)
            loop.close()
    notice = Webhook(secret).verify(requests[2].body, requests[2].headers)
    assert notice["type"] == "consent.expired"
    assert notice["data"]["task"].endswith(f"/Task/{task['id']}")
    moved = ok(hub.clinic.get(f"/fhir/Task/{task['id']}"))
    assert (moved["status"], moved["statusReason"]["text"]) == ("cancelled", "consent period ended")
    assert ok(hub.clinic.get(f"/fhir/ServiceRequest/{request_id}"))["status"] == "revoked"
    assert [(r.kind, r.state) for r in rows(hub.fhir.db, task["id"])] == [
        ("referral.created", "delivered"),
        ("consent.expired", "delivered"),
    ]
    assert any(d.startswith("consent period ended") for d in audit_descriptions(hub.fhir))
    # A referral on an open-ended Consent is untouched.
    assert ok(hub.clinic.get(f"/fhir/Task/{kept_task['id']}"))["status"] == "requested"
    assert ok(hub.partner.get(f"/fhir/ServiceRequest/{kept_id}"))["status"] == "active"

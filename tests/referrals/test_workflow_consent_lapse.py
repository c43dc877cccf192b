"""An opt-in referral's data stays visible to the partner only while the permitting Consent's period lasts.

CONTRACT.md: a partner reads what is routed to it "while consent permits". A Consent period that
ends needs no write to take effect: the partner's grants carry the period's end.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.referrals._workflow_hub import Hub, ok, permit
from tests.support.clients import FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_partner_access_lapses_with_the_consent_period(hub: Hub) -> None:
    patient = hub.patient()
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    consent = hub.consent(
        patient, permit(hub.partner.org_ref, period={"start": "2026-01-01", "end": _instant(ends)})
    )
    request_id, task = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    referral = f"ServiceRequest/{request_id}"
    assert [hub.partner.get(f"/fhir/{r}").status_code for r in (patient, consent, referral)] == [
        200,
        200,
        200,
    ]
    inbox = ok(hub.partner.get(f"/fhir/ServiceRequest?_id={request_id}"))
    assert len(inbox.get("entry", [])) == 1

    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 1.5)

    assert [hub.partner.get(f"/fhir/{r}").status_code for r in (patient, consent, referral)] == [
        404,
        404,
        404,
    ]
    assert ok(hub.partner.get(f"/fhir/ServiceRequest?_id={request_id}")).get("entry", []) == []
    # The partner keeps its Task (minimal, like after a withdrawal); the clinic keeps everything.
    assert hub.partner.get(f"/fhir/Task/{task['id']}").status_code == 200
    assert hub.clinic.get(f"/fhir/{referral}").status_code == 200


def test_open_ended_consent_never_lapses(hub: Hub) -> None:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref, period={"start": "2026-01-01"}))
    request_id, _ = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    assert hub.partner.get(f"/fhir/ServiceRequest/{request_id}").status_code == 200

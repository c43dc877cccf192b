"""A partner with only an email inbox is told a referral is waiting — and nothing about the person."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest

from tests.delivery._delivery_world import add_endpoint, drain, rows
from tests.referrals._workflow_hub import NHS, Hub, ok, permit
from tests.support.clients import FhirClients
from tests.support.smtp import smtp_server

PERSON = {
    "resourceType": "Patient",
    "identifier": [
        {"system": NHS, "value": "9434765919"},
        {"system": "https://clinic.example.org/Id/clinic-number", "value": "GUM-448812"},
    ],
    "name": [{"family": "Okafor", "given": ["Amara"]}],
    "birthDate": "1987-03-14",
    "telecom": [
        {"system": "phone", "value": "07700 900123"},
        {"system": "email", "value": "amara@example.org"},
    ],
    "address": [{"line": ["12 Cedar Road"], "city": "London", "postalCode": "E8 1AB"}],
}
# Every personal field of the test patient, and the clinical words its referral carries.
NEVER = [
    "Amara",
    "Okafor",
    "9434765919",
    "943 476 5919",
    "GUM-448812",
    "1987-03-14",
    "14/03/1987",
    "07700 900123",
    "07700900123",
    "amara@example.org",
    "Cedar Road",
    "E8 1AB",
    "HIV",
    "housing",
    "mental",
    "PHQ",
    "assessment",
    "consent",
    "diagnos",
]


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _text_of(raw: bytes) -> str:
    """The message as a person would read it: headers and every decoded part."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = [str(message.get(h, "")) for h in message]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return raw.decode("ascii", "replace") + "\n".join(parts)


def test_an_email_only_partner_gets_a_notice_with_no_personal_or_clinical_detail(
    hub: Hub, settings: Any
) -> None:
    patient = f"Patient/{ok(hub.clinic.post('/fhir/Patient', json=PERSON), 201)['id']}"
    consent = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    _, task = hub.referred(
        patient,
        hub.opt_in,
        supportingInfo=[{"reference": consent}],
        note=[{"text": "HIV clinic patient with a housing need; mental health follow-up"}],
        reasonCode=[{"text": "housing need"}],
    )
    with smtp_server() as smtp:
        add_endpoint(
            hub.admin, hub.partner.organization_id, "secure-email", "mailto:referrals@partner.example.org"
        )
        drain(hub.fhir.db, settings, smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls="auto")
        [received] = smtp.messages
    assert received.rcpt_tos == ("referrals@partner.example.org",)
    readable = _text_of(received.raw)
    leaked = [word for word in NEVER if word.lower() in readable.lower()]
    assert leaked == []
    assert f"/Task/{task['id']}" in readable  # where to collect it
    [row] = rows(hub.fhir.db, task["id"])
    assert (row.state, row.adapter) == ("delivered", "secure-email")
    assert row.message_id in str(received.message["Message-ID"])

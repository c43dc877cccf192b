"""A small world for the web app tests: a clinic, a housing partner, another partner, people who sign
in at each, and referrals made by the clinic through the real FHIR API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyotp

from fhir_profiles import ASSESSMENT_URL, ASSESSMENT_VERSION
from service.delivery.secrets import box_for
from service.settings import Settings
from service.web import accounts
from tests.referrals._workflow_hub import Hub, consent_body, ok, permit, referral_body
from tests.support.assessment import coded
from tests.support.clients import FhirClients

SERVICE_CATEGORY = "https://wraparound.org.uk/fhir/CodeSystem/service-category"
URGENCY = "https://wraparound.org.uk/fhir/CodeSystem/need-urgency"
PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    email: str
    secret: str
    recovery_codes: list[str]
    role: str

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


@dataclass
class World:
    hub: Hub
    settings: Settings
    housing: str  # HealthcareService/<id> of the partner, category housing (opt-in)
    people: dict[str, Person] = field(default_factory=dict)

    @classmethod
    def build(cls, fhir: FhirClients, settings: Settings) -> World:
        hub = Hub.build(fhir)
        body = {
            "resourceType": "HealthcareService",
            "active": True,
            "name": "Housing advice",
            "providedBy": {"reference": hub.partner.org_ref},
            "category": [{"coding": [{"system": SERVICE_CATEGORY, "code": "housing"}]}],
        }
        housing = f"HealthcareService/{ok(hub.admin.post('/fhir/HealthcareService', json=body), 201)['id']}"
        return cls(hub=hub, settings=settings, housing=housing)

    def person(self, name: str, organization_id: str, role: str) -> Person:
        with self.hub.fhir.db.transaction() as conn:
            enrolment = accounts.save_user(
                conn,
                box_for(self.settings),
                email=f"{name}@example.org",
                organization=f"Organization/{organization_id}",
                role=role,
                password=PASSWORD,
                now=datetime.now(UTC),
            )
        secret = re.search(r"secret=([A-Z2-7]+)", enrolment.otpauth_uri)
        assert secret is not None
        found = Person(enrolment.email, secret.group(1), enrolment.recovery_codes, role)
        self.people[name] = found
        return found

    def partner_worker(self) -> Person:
        return self.person("pat.partner", self.hub.partner.organization_id, "partner")

    def other_partner_worker(self) -> Person:
        return self.person("oli.other", self.hub.other_partner.organization_id, "partner")

    def clinic_worker(self) -> Person:
        return self.person("cara.clinic", self.hub.clinic.organization_id, "clinic")

    def refer(
        self,
        family: str = "Okafor",
        given: str = "Ada",
        *,
        reason: str = "Facing eviction next month",
        instruction: str = "Text first. Do not leave voicemail.",
        urgency: str = "Now",
    ) -> dict[str, Any]:
        """Patient, permit Consent, completed assessment (housing needed now; a positive PHQ-4) and the
        referral to the housing service, all by the clinic over HTTP. Returns the partner's Task."""
        clinic = self.hub.clinic
        patient_body = {
            "resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "name": [{"family": family, "given": [given]}],
            "telecom": [{"system": "phone", "value": "07700 900123", "use": "mobile"}],
        }
        patient = f"Patient/{ok(clinic.post('/fhir/Patient', json=patient_body), 201)['id']}"
        consent = ok(
            clinic.post(
                "/fhir/Consent", json=consent_body(patient, permit(self.hub.partner.org_ref), clinic.org_ref)
            ),
            201,
        )
        assessment = ok(
            clinic.post("/fhir/QuestionnaireResponse", json=_assessment(patient, clinic.org_ref, urgency)),
            201,
        )
        body = referral_body(patient, self.housing, clinic.org_ref)
        body["supportingInfo"] = [
            {"reference": f"Consent/{consent['id']}"},
            {"reference": f"QuestionnaireResponse/{assessment['id']}"},
        ]
        body["patientInstruction"] = instruction
        body["reasonCode"] = [{"text": reason}]
        request = ok(clinic.post("/fhir/ServiceRequest", json=body), 201)
        tasks = ok(self.hub.partner.get(f"/fhir/Task?focus=ServiceRequest/{request['id']}"))["entry"]
        task: dict[str, Any] = tasks[0]["resource"]
        return task


def _assessment(patient: str, author: str, urgency_display: str) -> dict[str, Any]:
    phq = [
        {"linkId": f"phq4-{n}", "answer": [coded(f"phq4-{n}", v)]}
        for n, v in zip((1, 2, 3, 4), (2, 1, 2, 1), strict=True)
    ]
    urgency = {"system": URGENCY, "code": "now", "display": urgency_display}
    housing = {
        "linkId": "need-housing",
        "answer": [
            {
                "valueBoolean": True,
                "item": [{"linkId": "need-housing-urgency", "answer": [{"valueCoding": urgency}]}],
            }
        ],
    }
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{ASSESSMENT_URL}|{ASSESSMENT_VERSION}",
        "status": "completed",
        "subject": {"reference": patient},
        "author": {"reference": author},
        "authored": "2026-11-20T10:00:00Z",
        "item": [{"linkId": "phq4", "item": phq}, {"linkId": "needs", "item": [housing]}],
    }

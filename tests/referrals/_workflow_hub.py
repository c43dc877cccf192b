"""A small referral world for the workflow tests: a clinic, two partners, opt-in and opt-out services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from fhir_profiles import ASSESSMENT_URL, ASSESSMENT_VERSION, CONSENT_MODEL_URL
from service.storage import referrals as referral_sql
from tests.support.clients import Client, FhirClients

NHS = "https://fhir.nhs.uk/Id/nhs-number"
V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Hub:
    fhir: FhirClients
    admin: Client
    clinic: Client
    partner: Client
    other_partner: Client
    opt_in: str  # HealthcareService/<id> of partner, opt-in (no extension)
    opt_out: str  # HealthcareService/<id> of partner, opt-out

    @classmethod
    def build(cls, fhir: FhirClients) -> Hub:
        admin = fhir.client("admin", "hub")

        def org(name: str) -> str:
            return str(
                ok(
                    admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": name}), 201
                )["id"]
            )

        clinic_id, partner_id, other_id = org("Clinic"), org("Partner A"), org("Partner B")

        def service(name: str, model: str | None) -> str:
            body: dict[str, Any] = {
                "resourceType": "HealthcareService",
                "active": True,
                "name": name,
                "providedBy": {"reference": f"Organization/{partner_id}"},
            }
            if model:
                body["extension"] = [{"url": CONSENT_MODEL_URL, "valueCode": model}]
            return f"HealthcareService/{ok(admin.post('/fhir/HealthcareService', json=body), 201)['id']}"

        return cls(
            fhir=fhir,
            admin=admin,
            clinic=fhir.client("clinic", clinic_id),
            partner=fhir.client("partner", partner_id),
            other_partner=fhir.client("partner", other_id),
            opt_in=service("Advice (opt-in)", None),
            opt_out=service("Peer support (opt-out)", "opt-out"),
        )

    # -- clinical data, written by the clinic ----------------------------------------------------------
    def patient(self, nhs: str = "9000000009", client: Client | None = None) -> str:
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": NHS, "value": nhs}],
            "name": [{"family": "Doe"}],
        }
        return f"Patient/{ok((client or self.clinic).post('/fhir/Patient', json=body), 201)['id']}"

    def consent(self, patient: str, provision: dict[str, Any], **extra: Any) -> str:
        body = consent_body(patient, provision, self.clinic.org_ref, **extra)
        return f"Consent/{ok(self.clinic.post('/fhir/Consent', json=body), 201)['id']}"

    def refer(self, patient: str, target: str, **changes: Any) -> httpx.Response:
        body = {**referral_body(patient, target, self.clinic.org_ref), **changes}
        return self.clinic.post("/fhir/ServiceRequest", json=body)

    def referred(self, patient: str, target: str, **changes: Any) -> tuple[str, dict[str, Any]]:
        """Refer and return (ServiceRequest id, its one Task as the clinic sees it)."""
        request_id = str(ok(self.refer(patient, target, **changes), 201)["id"])
        tasks = entries(self.clinic.get(f"/fhir/Task?focus=ServiceRequest/{request_id}"))
        assert len(tasks) == 1
        return request_id, tasks[0]

    def assessment(self, patient: str, author: str | None = None) -> httpx.Response:
        body = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{ASSESSMENT_URL}|{ASSESSMENT_VERSION}",
            "status": "in-progress",
            "subject": {"reference": patient},
            "author": {"reference": author or self.clinic.org_ref},
        }
        return self.clinic.post("/fhir/QuestionnaireResponse", json=body)

    def outbox(self, focus: str) -> list[dict[str, Any]]:
        with self.fhir.db.transaction() as conn:
            return referral_sql.outbox_for(conn, focus)


def entries(response: httpx.Response) -> list[dict[str, Any]]:
    bundle = ok(response)
    return [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"
    ]


def actor(reference: str, role: str = "IRCP") -> dict[str, Any]:
    return {"role": {"coding": [{"system": V3_ROLE, "code": role}]}, "reference": {"reference": reference}}


def permit(*actors: str, **extra: Any) -> dict[str, Any]:
    return {"type": "permit", "actor": [actor(a) for a in actors], **extra}


def deny(*actors: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "deny", **extra}
    if actors:
        body["actor"] = [actor(a) for a in actors]
    return body


def consent_body(patient: str, provision: dict[str, Any], organization: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        # A disclosure consent says when it was given (CONTRACT.md "What counts as consent") and what it
        # rests on (source[x]; without it the hub warns, ADR 0009).
        "dateTime": "2026-11-20T10:00:00Z",
        "sourceAttachment": {"title": "Signed consent form (kept by the clinic)"},
        "organization": [{"reference": organization}],
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": provision,
        **extra,
    }


def referral_body(patient: str, performer: str, requester: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "871731000000106"}]},
        "subject": {"reference": patient},
        "requester": {"reference": requester},
        "performer": [{"reference": performer}],
    }


def audit_descriptions(fhir: FhirClients) -> list[str]:
    """outcomeDesc of every AuditEvent so far (read from the database: admins' AuditEvent search is
    tested elsewhere)."""
    from sqlalchemy import select

    from service.storage.resources import R

    with fhir.db.transaction() as conn:
        rows = conn.execute(select(R.c.content).where(R.c.resource_type == "AuditEvent")).all()
    return [str(r[0].get("outcomeDesc")) for r in rows if r[0] and r[0].get("outcomeDesc")]

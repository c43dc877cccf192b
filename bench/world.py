"""The benchmark's world: directory records, registered clients, tokens and request bodies.

Directory records are written server-side through ``ResourceStore`` (as the hub writes its
own records); clinical data under test goes through the API. The partner's services use the
opt-out consent model (CONTRACT.md, Referral flow 2) so a referral needs no Consent.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from joserfc.jwk import ECKey

from auth.client import ASSERTION_TYPE, sign_client_assertion
from service.api import examples
from service.clients import register_client
from service.search.extract import extract_index_rows
from service.storage.database import Database
from service.storage.resources import ResourceStore

CLINIC = "bench-clinic"
PARTNERS = tuple(f"bench-partner-{i}" for i in range(5))
PARTNER = PARTNERS[0]  # the partner whose inbox is searched
CONSENT_MODEL = "https://wraparound.org.uk/fhir/StructureDefinition/consent-model"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
CLINIC_NUMBER = "https://bench.wraparound.org.uk/Id/clinic-number"
FHIR_JSON = "application/fhir+json"


OPT_IN_SERVICE = "bench-optin-service-0"  # the searched partner's opt-in service (the transaction's target)


def service_id(partner: str) -> str:
    return partner.replace("partner", "service")


def seed_directory(db: Database) -> None:
    now = datetime.now(UTC)
    with db.transaction() as conn:
        store = ResourceStore(conn)
        for org, name in [(CLINIC, "Bench HIV Clinic"), *((p, f"Bench Partner {p[-1]}") for p in PARTNERS)]:
            content = {"resourceType": "Organization", "active": True, "name": name}
            store.create("Organization", content, extract_index_rows(content), now=now, resource_id=org)
        for partner in PARTNERS:
            content = {
                "resourceType": "HealthcareService",
                "extension": [{"url": CONSENT_MODEL, "valueCode": "opt-out"}],
                "active": True,
                "providedBy": {"reference": f"Organization/{partner}"},
                "name": f"Peer support ({partner})",
            }
            store.create(
                "HealthcareService",
                content,
                extract_index_rows(content),
                now=now,
                resource_id=service_id(partner),
            )
        content = {
            "resourceType": "HealthcareService",
            "extension": [{"url": CONSENT_MODEL, "valueCode": "opt-in"}],
            "active": True,
            "providedBy": {"reference": f"Organization/{PARTNER}"},
            "name": f"Counselling ({PARTNER}, consent needed)",
        }
        store.create(
            "HealthcareService", content, extract_index_rows(content), now=now, resource_id=OPT_IN_SERVICE
        )


class Clients:
    """SMART clients with one ES384 key, registered straight into the database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.key = ECKey.generate_key("P-384", parameters={"kid": "bench"}, private=True)

    def register(self, client_id: str, organization: str, role: str) -> None:
        with self.db.transaction() as conn:
            register_client(
                conn,
                client_id=client_id,
                organization_id=f"Organization/{organization}",
                role=role,
                scopes="system/*.cruds",
                jwks={"keys": [self.key.as_dict(private=False)]},
                jwks_url=None,
                now=datetime.now(UTC),
            )

    def token(self, base_url: str, client_id: str) -> str:
        token_url = f"{base_url}/auth/token"
        assertion = sign_client_assertion(client_id, token_url, self.key)
        response = httpx.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
                "scope": "system/*.cruds",
            },
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def nhs_number(n: int) -> str:
    """A valid NHS number (mod-11 check digit) derived from ``n``; skips the invalid ones."""
    while True:
        digits = [int(c) for c in f"{900_000_000 + n % 99_999_999:09d}"]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)
        n += 1


def patient(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": NHS_NUMBER, "value": nhs_number(n)},
            {"system": CLINIC_NUMBER, "value": f"BENCH-{n:08d}"},
        ],
        "active": True,
        "name": [{"use": "official", "family": f"Bench{n % 977}", "given": ["Alex", "Sam"]}],
        "telecom": [{"system": "phone", "value": f"07700 9{n % 100000:05d}", "use": "mobile"}],
        "gender": ("female", "male", "other")[n % 3],
        "birthDate": f"{1950 + n % 50}-{1 + n % 12:02d}-{1 + n % 28:02d}",
        "address": [
            {"use": "home", "line": [f"{1 + n % 200} Bench Street"], "city": "London", "postalCode": "E1 6AN"}
        ],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}}],
    }


def service_request(n: int, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "https://bench.wraparound.org.uk/Id/referral", "value": f"REF-{n:08d}"}],
        "status": "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "306206005",
                        "display": "Referral to service",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "1287742003", "display": "Peer support"}],
            "text": "Peer support for people newly diagnosed with HIV",
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": "2024-05-01T10:00:00Z",
        "requester": {"reference": f"Organization/{CLINIC}"},
        "performer": [{"reference": f"HealthcareService/{service_id(PARTNER)}"}],
        "reasonCode": [{"text": "Newly diagnosed; would like to meet a peer mentor"}],
        "note": [{"text": "Prefers contact by text message in the afternoon."}],
    }


def _entry(resource: dict[str, Any], full_url: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def referral_bundle(n: int) -> dict[str, Any]:
    """The referral transaction: a new Patient, the Consent an opt-in service needs, the needs
    assessment (QuestionnaireResponse) and the ServiceRequest citing both, linked by urn:uuid."""
    patient_urn, consent_urn, assessment_urn = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    today = datetime.now(UTC).date()
    consent = copy.deepcopy(examples.CONSENT)
    consent["patient"] = {"reference": patient_urn}
    consent["dateTime"] = f"{today.isoformat()}T09:00:00Z"
    consent["organization"] = [{"reference": f"Organization/{CLINIC}"}]
    consent["provision"]["period"] = {
        "start": today.isoformat(),
        "end": (today + timedelta(days=365)).isoformat(),
    }
    consent["provision"]["actor"][0]["reference"] = {"reference": f"Organization/{PARTNER}"}
    assessment = copy.deepcopy(examples.QUESTIONNAIRE_RESPONSE)
    assessment["subject"] = {"reference": patient_urn}
    assessment["author"] = {"reference": f"Organization/{CLINIC}"}
    referral = service_request(n, "unused")
    referral["subject"] = {"reference": patient_urn}
    referral["performer"] = [{"reference": f"HealthcareService/{OPT_IN_SERVICE}"}]
    referral["supportingInfo"] = [{"reference": consent_urn}, {"reference": assessment_urn}]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(patient(n), patient_urn),
            _entry(consent, consent_urn),
            _entry(assessment, assessment_urn),
            _entry(referral, f"urn:uuid:{uuid.uuid4()}"),
        ],
    }


def body(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)

"""SMART v2 scope letters per interaction, v1 aliases and scope narrowing at the token endpoint.

Each interaction needs its letter (issue 3 "Scopes and tenancy"): read/vread/history -> r, search -> s,
create -> c, update -> u, delete -> d; a missing letter is a 403 OperationOutcome. The granted scope is
the intersection of what was requested and what the client is pre-authorised for, never wider
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.referrals._workflow_hub import NHS, ok
from tests.support.clients import Client, FhirClients, assertion
from tests.support.logscan import SECRETS


def _patient_body() -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": NHS, "value": "9000000009"}]}


@pytest.fixture
def clinic_org(fhir: FhirClients) -> str:
    admin = fhir.client("admin", "hub")
    return str(
        ok(admin.post("/fhir/Organization", json={"resourceType": "Organization", "name": "C"}), 201)["id"]
    )


@pytest.fixture
def patient_id(fhir: FhirClients, clinic_org: str) -> str:
    writer = fhir.client("clinic", clinic_org, client_id=f"writer-{uuid.uuid4().hex[:6]}")
    return str(ok(writer.post("/fhir/Patient", json=_patient_body()), 201)["id"])


def _limited(fhir: FhirClients, org: str, scopes: str) -> Client:
    return fhir.client("clinic", org, scopes=scopes, client_id=f"limited-{uuid.uuid4().hex[:8]}")


def _forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"
    assert "scope" in outcome["issue"][0]["diagnostics"]


def _token_response(fhir: FhirClients, client_id: str, scope: str) -> httpx.Response:
    response = fhir.http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(client_id, fhir.token_url),
            "scope": scope,
        },
    )
    if response.status_code == 200:
        SECRETS.append(response.json()["access_token"])  # the log scan looks for it
    return response


def test_read_letter_alone_reads_but_neither_searches_nor_writes(
    fhir: FhirClients, clinic_org: str, patient_id: str
) -> None:
    client = _limited(fhir, clinic_org, "system/Patient.r")
    assert ok(client.get(f"/fhir/Patient/{patient_id}"))["id"] == patient_id
    assert ok(client.get(f"/fhir/Patient/{patient_id}/_history/1"))["id"] == patient_id
    assert ok(client.get(f"/fhir/Patient/{patient_id}/_history"))["total"] == 1
    _forbidden(client.get("/fhir/Patient"))
    _forbidden(client.get(f"/fhir/Patient?_id={patient_id}"))
    _forbidden(
        client.post(
            "/fhir/Patient/_search",
            content=b"",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    _forbidden(client.post("/fhir/Patient", json=_patient_body()))
    current = ok(client.get(f"/fhir/Patient/{patient_id}"))
    _forbidden(client.put(f"/fhir/Patient/{patient_id}", json=current))
    _forbidden(client.delete(f"/fhir/Patient/{patient_id}"))
    # Other types are outside the token altogether.
    _forbidden(client.get("/fhir/Organization"))
    _forbidden(client.get(f"/fhir/ServiceRequest/{uuid.uuid4()}"))


def test_search_letter_alone_searches_but_does_not_read(
    fhir: FhirClients, clinic_org: str, patient_id: str
) -> None:
    client = _limited(fhir, clinic_org, "system/Patient.s")
    assert ok(client.get(f"/fhir/Patient?_id={patient_id}"))["total"] == 1
    for path in (
        f"Patient/{patient_id}",
        f"Patient/{patient_id}/_history/1",
        f"Patient/{patient_id}/_history",
        "Patient/_history",
    ):
        _forbidden(client.get(f"/fhir/{path}"))


def test_each_write_needs_its_letter(fhir: FhirClients, clinic_org: str, patient_id: str) -> None:
    create_only = _limited(fhir, clinic_org, "system/Patient.cr")
    created = ok(create_only.post("/fhir/Patient", json=_patient_body()), 201)
    _forbidden(create_only.put(f"/fhir/Patient/{created['id']}", json=created))
    _forbidden(create_only.delete(f"/fhir/Patient/{created['id']}"))
    update_only = _limited(fhir, clinic_org, "system/Patient.ru")
    assert ok(update_only.put(f"/fhir/Patient/{created['id']}", json=created))["meta"]["versionId"] == "2"
    _forbidden(update_only.delete(f"/fhir/Patient/{created['id']}"))
    _forbidden(update_only.post("/fhir/Patient", json=_patient_body()))
    delete_only = _limited(fhir, clinic_org, "system/Patient.d")
    assert delete_only.delete(f"/fhir/Patient/{created['id']}").status_code == 204


def test_bundle_entries_need_their_letters(fhir: FhirClients, clinic_org: str, patient_id: str) -> None:
    client = _limited(fhir, clinic_org, "system/Patient.r")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{patient_id}"}},
            {"request": {"method": "GET", "url": "Patient?identifier=9000000009"}},
            {"request": {"method": "POST", "url": "Patient"}, "resource": _patient_body()},
        ],
    }
    statuses = [e["response"]["status"] for e in ok(client.post("/fhir", json=batch))["entry"]]
    assert statuses == ["200 OK", "403 Forbidden", "403 Forbidden"]
    transaction = {**batch, "type": "transaction", "entry": batch["entry"][2:]}
    _forbidden(client.post("/fhir", json=transaction))


def test_v1_read_alias_reads_and_searches(fhir: FhirClients, clinic_org: str, patient_id: str) -> None:
    client = _limited(fhir, clinic_org, "system/Patient.read")
    assert ok(client.get(f"/fhir/Patient/{patient_id}"))["id"] == patient_id
    assert ok(client.get(f"/fhir/Patient?_id={patient_id}"))["total"] == 1
    _forbidden(client.post("/fhir/Patient", json=_patient_body()))
    writer = _limited(fhir, clinic_org, "system/Patient.write")
    assert writer.post("/fhir/Patient", json=_patient_body()).status_code == 201
    _forbidden(writer.get(f"/fhir/Patient/{patient_id}"))


def test_granted_scope_is_narrowed_to_the_registration(
    fhir: FhirClients, clinic_org: str, patient_id: str
) -> None:
    fhir.register("narrow-client", clinic_org, "clinic", "system/Patient.rs")
    response = _token_response(fhir, "narrow-client", "system/*.cruds")
    assert response.status_code == 200, response.text
    granted = response.json()
    assert granted["scope"] == "system/Patient.rs"
    assert granted["token_type"].lower() == "bearer"
    client = Client(fhir.http, granted["access_token"], clinic_org, "clinic")
    assert ok(client.get(f"/fhir/Patient?_id={patient_id}"))["total"] == 1
    _forbidden(client.post("/fhir/Patient", json=_patient_body()))
    _forbidden(client.get(f"/fhir/ServiceRequest?subject=Patient/{patient_id}"))
    # Asking for less than registered gets exactly that.
    smaller = _token_response(fhir, "narrow-client", "system/Patient.r system/Task.r")
    assert smaller.json()["scope"] == "system/Patient.r"
    # Asking only for what is not registered is refused (RFC 6749 §5.2 invalid_scope).
    refused = _token_response(fhir, "narrow-client", "system/Task.cruds")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"

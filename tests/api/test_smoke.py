"""A first end-to-end pass over HTTP: metadata, create, read, search."""

from __future__ import annotations

from tests.support.clients import FhirClients

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
    "name": [{"family": "Example", "given": ["Alex"]}],
}


def test_metadata_needs_no_token(fhir: FhirClients) -> None:
    response = fhir.anonymous().get("/fhir/metadata")
    assert response.status_code == 200
    assert response.json()["fhirVersion"] == "4.0.1"


def test_create_read_search_patient(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    created = clinic.post("/fhir/Patient", json=PATIENT)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith(f"/fhir/Patient/{pid}/_history/1")
    read = clinic.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200
    assert read.json()["name"] == PATIENT["name"]
    found = clinic.get("/fhir/Patient?family=exam")
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]

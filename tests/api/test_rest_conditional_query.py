"""Search parameters on a create POST are its conditional criteria (ADR 0010,
http://hl7.org/fhir/R4/http.html#ccreate): fhirpy's get_or_create makes no duplicate."""

from __future__ import annotations

from typing import Any

from fhirpy import SyncFHIRClient

from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic.example.org/Id/local"


def _patient(local: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": LOCAL, "value": local}],
        "name": [{"family": "Once", "given": ["Only"]}],
    }


def _count(client: Client, local: str) -> int:
    found = client.get("/fhir/Patient", params={"identifier": f"{LOCAL}|{local}", "_total": "accurate"})
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def _fhirpy(fhir: FhirClients, caller: Client) -> SyncFHIRClient:
    return SyncFHIRClient(fhir.base_url + "/fhir", authorization=f"Bearer {caller.token}")


def test_fhirpy_get_or_create_makes_no_duplicate(fhir: FhirClients) -> None:
    caller = fhir.client("clinic")
    client = _fhirpy(fhir, caller)
    search = client.resources("Patient").search(identifier=f"{LOCAL}|gc-1")
    first, created = search.get_or_create(client.resource("Patient", **_patient("gc-1")))
    assert created
    second, created_again = search.get_or_create(client.resource("Patient", **_patient("gc-1")))
    assert not created_again
    assert second.id == first.id
    assert _count(caller, "gc-1") == 1


def test_fhirpy_create_with_criteria(fhir: FhirClients) -> None:
    caller = fhir.client("clinic")
    client = _fhirpy(fhir, caller)
    ids = set()
    for _ in range(2):
        patient = client.resource("Patient", **_patient("gc-2"))
        patient.create(identifier=f"{LOCAL}|gc-2")  # type: ignore[no-untyped-call]
        ids.add(patient.id)
    assert len(ids) == 1
    assert _count(caller, "gc-2") == 1


def test_query_criteria_over_raw_http(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    url = f"/fhir/Patient?identifier={LOCAL}|gc-3&_format=json"
    first = clinic.post(url, json=_patient("gc-3"))
    assert first.status_code == 201, first.text
    again = clinic.post(url, json=_patient("gc-3"))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    # _format/_pretty alone are not criteria: a plain create.
    plain = clinic.post("/fhir/Patient?_format=json&_pretty=true", json=_patient("gc-4"))
    assert plain.status_code == 201, plain.text


def test_query_criteria_errors_change_nothing(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    unknown = clinic.post("/fhir/Patient?colour=blue", json=_patient("gc-5"))
    assert unknown.status_code == 400, unknown.text
    both = clinic.post(
        f"/fhir/Patient?identifier={LOCAL}|gc-5",
        json=_patient("gc-5"),
        headers={"If-None-Exist": f"identifier={LOCAL}|gc-5"},
    )
    assert both.status_code == 400, both.text
    assert "If-None-Exist" in both.json()["issue"][0]["diagnostics"]
    assert _count(clinic, "gc-5") == 0


def test_query_criteria_in_a_transaction_entry(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    entry = {
        "resource": _patient("gc-6"),
        "request": {"method": "POST", "url": f"Patient?identifier={LOCAL}|gc-6"},
    }
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    statuses = []
    for _ in range(2):
        response = clinic.post("/fhir", json=bundle)
        assert response.status_code == 200, response.text
        statuses.append(response.json()["entry"][0]["response"]["status"][:3])
    assert statuses == ["201", "200"]
    assert _count(clinic, "gc-6") == 1

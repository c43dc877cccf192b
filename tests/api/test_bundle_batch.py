"""Batch Bundles over HTTP: each entry succeeds or fails on its own (http://hl7.org/fhir/R4/http.html#transaction)."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import Conflict
from service.rest import hooks
from service.rest.context import Context
from service.storage.resources import Stored
from tests.support.clients import Client, FhirClients

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def _patient(nhs: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": "Batch"}],
    }


def _batch(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}


def _post(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def _total(client: Client, query: str) -> int:
    found = client.get(f"/fhir/{query}")
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


def test_failing_entry_does_not_undo_the_others(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    bundle = _batch(
        _post(_patient("9100000019")),
        _post({"resourceType": "Patient", "gender": 42}),
        {"request": {"method": "GET", "url": "Patient/nope"}},
        _post(_patient("9100000027")),
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "batch-response"
    first, invalid, missing, last = body["entry"]
    assert first["response"]["status"] == "201 Created"
    assert last["response"]["status"] == "201 Created"
    assert invalid["response"]["status"] == "400 Bad Request"
    assert invalid["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert "resource" not in invalid
    assert missing["response"]["status"] == "404 Not Found"
    assert missing["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert _total(clinic, f"Patient?identifier={NHS}|9100000019") == 1
    assert _total(clinic, f"Patient?identifier={NHS}|9100000027") == 1
    assert _total(clinic, "Patient") == 2


def _explode(_ctx: Context, stored: Stored, _old: Stored | None) -> None:
    if (stored.content or {}).get("name", [{}])[0].get("family") == "Explode":
        raise Conflict("test hook refuses this write after it was stored")


def test_entry_failing_after_its_write_rolls_back_only_itself(
    fhir: FhirClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hook fails after the row is written: only the entry's SAVEPOINT is undone.
    monkeypatch.setattr(hooks, "_AFTER", {**hooks._AFTER, "Practitioner": [_explode]})
    clinic = fhir.client("clinic")
    bundle = _batch(
        _post({"resourceType": "Practitioner", "name": [{"family": "Explode"}]}),
        _post({"resourceType": "Practitioner", "name": [{"family": "Calm"}]}),
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["409 Conflict", "201 Created"]
    assert _total(clinic, "Practitioner?family=Explode") == 0
    assert _total(clinic, "Practitioner?family=Calm") == 1
    as_transaction = {**bundle, "type": "transaction"}
    refused = clinic.post("/fhir", json={**as_transaction, "entry": bundle["entry"][::-1]})
    assert refused.status_code == 409, refused.text
    assert refused.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert _total(clinic, "Practitioner?family=Calm") == 1


def test_get_entries_read_and_search(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    created = clinic.post("/fhir/Patient", json=_patient("9100000035"))
    assert created.status_code == 201
    pid = created.json()["id"]
    bundle = _batch(
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        {"request": {"method": "GET", "url": f"Patient?identifier={NHS}|9100000035"}},
        {"request": {"method": "GET", "url": f"Patient/{pid}/_history/1"}},
        {"request": {"method": "GET", "url": "Organization?name=anything"}},
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    read, found, version, orgs = response.json()["entry"]
    assert read["response"]["status"] == "200 OK"
    assert read["resource"]["id"] == pid
    assert read["response"]["etag"] == 'W/"1"'
    assert found["resource"]["type"] == "searchset"
    assert [e["resource"]["id"] for e in found["resource"]["entry"]] == [pid]
    assert version["resource"]["meta"]["versionId"] == "1"
    assert orgs["resource"]["total"] == 0


def test_batch_hides_what_the_caller_may_not_see(fhir: FhirClients) -> None:
    owner = fhir.client("clinic")
    other = fhir.client("clinic")
    pid = owner.post("/fhir/Patient", json=_patient("9100000043")).json()["id"]
    response = other.post("/fhir", json=_batch({"request": {"method": "GET", "url": f"Patient/{pid}"}}))
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["response"]["status"] == "404 Not Found"


def test_batch_does_not_resolve_placeholders_between_entries(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    bundle = _batch(
        {**_post(_patient("9100000051")), "fullUrl": "urn:uuid:4f1c4ad6-3d67-4c4b-9f5b-0c1b9b3c0c01"},
        _post(
            {
                "resourceType": "Practitioner",
                "name": [{"family": "Nurse"}],
                "extension": [
                    {
                        "url": "https://example.org/ext",
                        "valueReference": {"reference": "urn:uuid:4f1c4ad6-3d67-4c4b-9f5b-0c1b9b3c0c01"},
                    }
                ],
            }
        ),
    )
    response = clinic.post("/fhir", json=bundle)
    assert response.status_code == 200, response.text
    second = response.json()["entry"][1]
    if second["response"]["status"] == "201 Created":
        ext = second["resource"]["extension"][0]
        assert ext["valueReference"]["reference"].startswith("urn:uuid:")
    else:
        assert second["response"]["status"].startswith("4")
    assert response.json()["entry"][0]["response"]["status"] == "201 Created"


def test_conditional_create_and_update_in_a_batch(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    criteria = f"identifier={NHS}|9100000078"
    create = {
        "resource": _patient("9100000078"),
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria},
    }
    first = clinic.post("/fhir", json=_batch(create))
    second = clinic.post("/fhir", json=_batch(create))
    assert first.json()["entry"][0]["response"]["status"] == "201 Created"
    assert second.json()["entry"][0]["response"]["status"] == "200 OK"
    assert _total(clinic, f"Patient?{criteria}") == 1
    update = {
        "resource": {**_patient("9100000078"), "gender": "male"},
        "request": {"method": "PUT", "url": f"Patient?{criteria}"},
    }
    updated = clinic.post("/fhir", json=_batch(update), headers={"Prefer": "return=OperationOutcome"})
    entry = updated.json()["entry"][0]
    assert entry["response"]["status"] == "200 OK"
    assert entry["response"]["location"].endswith("/_history/2")
    assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert "resource" not in entry


def test_batch_failures_are_audited(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    admin = fhir.client("admin", "hub")
    response = clinic.post("/fhir", json=_batch({"request": {"method": "DELETE", "url": "Patient/nope"}}))
    assert response.json()["entry"][0]["response"]["status"] == "404 Not Found"
    events = admin.get("/fhir/AuditEvent?_count=100")
    assert events.status_code == 200, events.text
    subtypes = [e["resource"]["subtype"][0]["code"] for e in events.json().get("entry", [])]
    assert "batch" in subtypes
    assert any(
        e["resource"]["outcome"] == "4" and "Bundle.entry[0]" in e["resource"].get("outcomeDesc", "")
        for e in events.json()["entry"]
    )

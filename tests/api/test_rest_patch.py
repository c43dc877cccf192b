"""PATCH with JSON Patch (RFC 6902) over real HTTP (http://hl7.org/fhir/R4/http.html#patch):
the patched resource goes through the same pipeline as an update."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from fhirpy import SyncFHIRClient

from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic.example.org/Id/local"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def _patient(local: str = "patch-1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": LOCAL, "value": local}],
        "name": [{"family": "Patchwork", "given": ["Pat"]}],
    }


def _create(client: Client, body: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _patch(client: Client, url: str, ops: Any, **headers: str) -> httpx.Response:
    return client.http.patch(
        url,
        content=json.dumps(ops),
        headers={"Authorization": f"Bearer {client.token}", **JSON_PATCH, **headers},
    )


def test_patch_applies_and_versions(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient())
    ops = [
        {"op": "add", "path": "/gender", "value": "female"},
        {"op": "replace", "path": "/name/0/family", "value": "Patched"},
        {"op": "test", "path": "/identifier/0/value", "value": "patch-1"},
    ]
    response = _patch(clinic, f"/fhir/Patient/{pid}", ops, **{"If-Match": 'W/"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == 'W/"2"'
    body = response.json()
    assert (body["gender"], body["name"][0]["family"], body["meta"]["versionId"]) == (
        "female",
        "Patched",
        "2",
    )
    assert clinic.get(f"/fhir/Patient/{pid}").json()["gender"] == "female"
    # Searches see the new values: the index rows were rewritten like an update's.
    found = clinic.get("/fhir/Patient", params={"family": "Patched"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [pid]


def test_if_match_mismatch_is_412_and_changes_nothing(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient())
    ops = [{"op": "add", "path": "/gender", "value": "male"}]
    response = _patch(clinic, f"/fhir/Patient/{pid}", ops, **{"If-Match": 'W/"7"'})
    assert response.status_code == 412, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "gender" not in clinic.get(f"/fhir/Patient/{pid}").json()


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "test", "path": "/gender", "value": "male"}], 422),  # test fails
        ([{"op": "remove", "path": "/birthDate"}], 422),  # nothing there
        ([{"op": "replace", "path": "/name/5/family", "value": "X"}], 422),
        ([{"op": "replace", "path": "/id", "value": "other"}], 422),
        ([{"op": "remove", "path": "/resourceType"}], 422),
        ([{"op": "replace", "path": "/meta/versionId", "value": "9"}], 422),
        ([{"op": "remove", "path": "/meta"}], 422),
        ([{"op": "remove", "path": "/identifier"}], 422),  # breaks a business rule
        ([{"op": "add", "path": "/gender", "value": 5}], 400),  # structurally invalid result
        ([{"op": "add", "path": "/colour", "value": "blue"}], 400),  # unknown element
        ([{"op": "frobnicate", "path": "/gender"}], 400),
        ([{"op": "add", "path": "gender", "value": "male"}], 400),  # not a JSON Pointer
        ([{"op": "add", "path": "/gender"}], 400),  # no value
        ([{"op": "move", "path": "/gender"}], 400),  # no from
        ([], 400),
        ({"op": "add", "path": "/gender", "value": "male"}, 400),  # not an array
    ],
)
def test_bad_patches_are_refused_and_change_nothing(fhir: FhirClients, ops: Any, status: int) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient())
    response = _patch(clinic, f"/fhir/Patient/{pid}", ops)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    current = clinic.get(f"/fhir/Patient/{pid}")
    assert current.headers["ETag"] == 'W/"1"'


def test_unsupported_patch_formats_are_415(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient())
    fhirpath_patch = {"resourceType": "Parameters", "parameter": [{"name": "operation"}]}
    for content_type in ("application/fhir+json", "application/json", "text/plain"):
        response = clinic.http.patch(
            f"/fhir/Patient/{pid}",
            content=json.dumps(fhirpath_patch),
            headers={"Authorization": f"Bearer {clinic.token}", "Content-Type": content_type},
        )
        assert response.status_code == 415, (content_type, response.text)
    xml = clinic.http.patch(
        f"/fhir/Patient/{pid}",
        content="<diff/>",
        headers={"Authorization": f"Bearer {clinic.token}", "Content-Type": "application/xml-patch+xml"},
    )
    assert xml.status_code == 415


def test_tenancy_scopes_and_deletion(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient())
    ops = [{"op": "add", "path": "/gender", "value": "male"}]
    other = fhir.client("clinic")
    assert _patch(other, f"/fhir/Patient/{pid}", ops).status_code == 404
    assert _patch(clinic, "/fhir/Patient/never-was", ops).status_code == 404
    reader = fhir.client("clinic", clinic.organization_id, scopes="system/Patient.rs", client_id="reader")
    assert _patch(reader, f"/fhir/Patient/{pid}", ops).status_code == 403
    partner = fhir.client("partner")
    assert _patch(partner, f"/fhir/Patient/{pid}", ops).status_code in (403, 404)
    assert "gender" not in clinic.get(f"/fhir/Patient/{pid}").json()
    assert _patch(clinic, f"/fhir/Observation/{pid}", ops).status_code == 405
    assert clinic.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert _patch(clinic, f"/fhir/Patient/{pid}", ops).status_code == 410


def test_patch_is_audited_as_an_update(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    admin = fhir.client("admin", "hub")
    pid = _create(clinic, _patient())
    assert _patch(
        clinic, f"/fhir/Patient/{pid}", [{"op": "add", "path": "/gender", "value": "male"}]
    ).is_success
    events = admin.get("/fhir/AuditEvent?_count=100").json()["entry"]
    subtypes = [e["resource"]["subtype"][0]["code"] for e in events]
    assert "update" in subtypes


def _binary_patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(ops).encode()).decode()
    return {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}


def test_patch_in_a_transaction_and_a_batch(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, _patient())
    entry = {
        "resource": _binary_patch([{"op": "add", "path": "/gender", "value": "other"}]),
        "request": {"method": "PATCH", "url": f"Patient/{pid}", "ifMatch": 'W/"1"'},
    }
    tx = clinic.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]})
    assert tx.status_code == 200, tx.text
    assert tx.json()["entry"][0]["response"]["status"].startswith("200")
    assert clinic.get(f"/fhir/Patient/{pid}").json()["gender"] == "other"

    failing = {
        "resource": _binary_patch([{"op": "test", "path": "/gender", "value": "male"}]),
        "request": {"method": "PATCH", "url": f"Patient/{pid}"},
    }
    rolled_back = clinic.post(
        "/fhir",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": _patient("patch-2"), "request": {"method": "POST", "url": "Patient"}},
                failing,
            ],
        },
    )
    assert rolled_back.status_code == 422, rolled_back.text
    assert "Bundle.entry[1]" in rolled_back.text
    assert clinic.get("/fhir/Patient", params={"identifier": f"{LOCAL}|patch-2"}).json()["total"] == 0

    stale = {**entry, "request": {**entry["request"], "ifMatch": 'W/"1"'}}
    not_binary = {"resource": _patient(), "request": {"method": "PATCH", "url": f"Patient/{pid}"}}
    batch = clinic.post(
        "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [stale, not_binary]}
    )
    assert batch.status_code == 200, batch.text
    statuses = [e["response"]["status"] for e in batch.json()["entry"]]
    assert statuses[0].startswith("412"), statuses
    assert statuses[1].startswith("400"), statuses


def test_capability_statement_lists_patch_where_update_is_allowed(fhir: FhirClients) -> None:
    statement = fhir.anonymous().get("/fhir/metadata").json()
    codes = {r["type"]: {i["code"] for i in r["interaction"]} for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Task"} <= {t for t, c in codes.items() if "patch" in c}
    assert not {"Observation", "AuditEvent"} & {t for t, c in codes.items() if "patch" in c}
    assert all(("patch" in c) == ("update" in c) for c in codes.values())


def test_fhirpy_patch(fhir: FhirClients) -> None:
    """fhirpy sends a partial resource as application/json (a JSON Merge Patch, RFC 7386)."""
    caller = fhir.client("clinic")
    client = SyncFHIRClient(fhir.base_url + "/fhir", authorization=f"Bearer {caller.token}")
    patient = client.resource("Patient", **_patient("fhirpy-patch"))
    patient.save()
    patient.patch(gender="female", birthDate="1980-01-02")
    assert patient["meta"]["versionId"] == "2"
    fetched = client.reference("Patient", patient.id).to_resource()
    assert (fetched["gender"], fetched["birthDate"]) == ("female", "1980-01-02")
    assert fetched["name"][0]["family"] == "Patchwork"  # untouched elements stay
    patched = client.patch("Patient", patient.id, gender="male")
    assert patched["gender"] == "male"

"""CRUD, versioning, history and conditional interactions over real HTTP
(http://hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tests.support.clients import Client, FhirClients

LOCAL_ID = "https://clinic.example.org/Id/local"


def patient(local: str = "p-1", family: str = "Example", **extra: object) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": LOCAL_ID, "value": local}],
        "name": [{"family": family, "given": ["Alex"]}],
        **extra,
    }


def _create(client: Client, body: dict[str, object]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_create_assigns_server_id_and_version_headers(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    body = patient(id="client-chosen", meta={"versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z"})
    response = clinic.post("/fhir/Patient", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] != "client-chosen"
    assert created["meta"]["versionId"] == "1"
    assert not created["meta"]["lastUpdated"].startswith("2001")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"{fhir.base_url}/fhir/Patient/{created['id']}/_history/1"
    modified = parsedate_to_datetime(response.headers["Last-Modified"])
    assert abs((modified - datetime.now(UTC)).total_seconds()) < 60
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert clinic.get("/fhir/Patient/client-chosen").status_code == 404


def test_read_vread_update_with_if_match(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, patient())
    read = clinic.get(f"/fhir/Patient/{pid}")
    assert read.status_code == 200
    assert read.headers["ETag"] == 'W/"1"'
    changed = {**read.json(), "gender": "female"}
    updated = clinic.put(f"/fhir/Patient/{pid}", json=changed, headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["meta"]["versionId"] == "2"
    assert updated.headers["ETag"] == 'W/"2"'
    stale = clinic.put(
        f"/fhir/Patient/{pid}", json={**changed, "gender": "male"}, headers={"If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert clinic.get(f"/fhir/Patient/{pid}").json()["gender"] == "female"
    v1 = clinic.get(f"/fhir/Patient/{pid}/_history/1")
    assert v1.status_code == 200
    assert "gender" not in v1.json()
    assert v1.json()["meta"]["versionId"] == "1"
    assert clinic.get(f"/fhir/Patient/{pid}/_history/9").status_code == 404


def test_server_owned_meta_from_client_is_ignored_on_update(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, patient())
    body = {**patient(), "id": pid, "meta": {"versionId": "77", "lastUpdated": "1999-01-01T00:00:00Z"}}
    updated = clinic.put(f"/fhir/Patient/{pid}", json=body)
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2"
    assert not updated.json()["meta"]["lastUpdated"].startswith("1999")


def test_update_as_create_with_client_id(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    body = {"resourceType": "Organization", "id": "my-own-id-1", "name": "Own id Org"}
    created = admin.put("/fhir/Organization/my-own-id-1", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "my-own-id-1"
    assert created.headers["ETag"] == 'W/"1"'
    assert admin.get("/fhir/Organization/my-own-id-1").status_code == 200


def test_put_never_creates_clinical_records(fhir: FhirClients) -> None:
    # Ids of clinical records are the server's: PUT to an unused id is 404, exactly as
    # for another organisation's id, so it cannot be used to probe which ids exist.
    clinic = fhir.client("clinic")
    missing = clinic.put("/fhir/Patient/my-own-id-2", json={**patient(), "id": "my-own-id-2"})
    assert missing.status_code == 404, missing.text
    assert clinic.get("/fhir/Patient?_id=my-own-id-2").json().get("total") == 0


def test_delete_then_gone_history_keeps_all_versions(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, patient())
    clinic.put(f"/fhir/Patient/{pid}", json={**patient(family="Second"), "id": pid})
    deleted = clinic.delete(f"/fhir/Patient/{pid}")
    assert deleted.status_code == 204
    gone = clinic.get(f"/fhir/Patient/{pid}")
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"
    assert clinic.get(f"/fhir/Patient/{pid}/_history/2").json()["name"][0]["family"] == "Second"
    assert clinic.get(f"/fhir/Patient/{pid}/_history/1").status_code == 200
    history = clinic.get(f"/fhir/Patient/{pid}/_history")
    assert history.status_code == 200
    bundle = history.json()
    assert bundle["type"] == "history"
    assert bundle["total"] == 3
    methods = [e["request"]["method"] for e in bundle["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in bundle["entry"][0]
    # A deleted resource no longer matches searches.
    assert "entry" not in clinic.get(f"/fhir/Patient?_id={pid}").json()
    # Deleting again succeeds and makes no new version.
    assert clinic.delete(f"/fhir/Patient/{pid}").status_code == 204
    assert clinic.get(f"/fhir/Patient/{pid}/_history").json()["total"] == 3


def test_type_history_and_since(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    first = _create(clinic, patient("a"))
    time.sleep(0.05)
    cut = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.05)
    second = _create(clinic, patient("b"))
    clinic.put(f"/fhir/Patient/{first}", json={**patient("a", family="Later"), "id": first})
    everything = clinic.get("/fhir/Patient/_history").json()
    assert everything["total"] == 3
    assert [e["resource"]["id"] for e in everything["entry"]] == [first, second, first]
    since = clinic.get("/fhir/Patient/_history", params={"_since": cut}).json()
    assert since["total"] == 2
    assert {e["resource"]["id"] for e in since["entry"]} == {first, second}
    only_first = clinic.get(f"/fhir/Patient/{first}/_history", params={"_since": cut}).json()
    assert [e["resource"]["meta"]["versionId"] for e in only_first["entry"]] == ["2"]
    # Another clinic sees none of this history.
    other = fhir.client("clinic")
    assert other.get("/fhir/Patient/_history").json()["total"] == 0


def test_prefer_return_minimal_and_operation_outcome(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    minimal = clinic.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["ETag"] == 'W/"1"'
    assert "/fhir/Patient/" in minimal.headers["Location"]
    outcome = clinic.post("/fhir/Patient", json=patient("p-2"), headers={"Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"
    representation = clinic.post(
        "/fhir/Patient", json=patient("p-3"), headers={"Prefer": "return=representation"}
    )
    assert representation.json()["resourceType"] == "Patient"


def test_unknown_id_and_unknown_type(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    missing = clinic.get("/fhir/Patient/does-not-exist")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    for path in ("/fhir/Spaceship/1", "/fhir/Spaceship"):
        unknown = clinic.get(path)
        assert unknown.status_code == 404, (path, unknown.text)
        assert unknown.json()["resourceType"] == "OperationOutcome"
    assert clinic.post("/fhir/Spaceship", json={"resourceType": "Spaceship"}).status_code == 404


def test_unsupported_interaction_is_405(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": True}],
        "source": {"observer": {"display": "x"}},
    }
    for client in (admin, fhir.client("clinic")):
        created = client.post("/fhir/AuditEvent", json=event)
        assert created.status_code == 405, created.text
        assert created.json()["resourceType"] == "OperationOutcome"
        assert client.put("/fhir/AuditEvent/x", json={**event, "id": "x"}).status_code == 405
        assert client.delete("/fhir/AuditEvent/x").status_code == 405


def test_conditional_create_if_none_exist(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    criteria = {"If-None-Exist": f"identifier={LOCAL_ID}|cc-1"}
    first = clinic.post("/fhir/Patient", json=patient("cc-1"), headers=criteria)
    assert first.status_code == 201
    again = clinic.post("/fhir/Patient", json=patient("cc-1"), headers=criteria)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    found = clinic.get("/fhir/Patient", params={"identifier": f"{LOCAL_ID}|cc-1"}).json()
    assert found["total"] == 1
    _create(clinic, patient("dup", family="Twin"))
    _create(clinic, patient("dup2", family="Twin"))
    ambiguous = clinic.post("/fhir/Patient", json=patient("x"), headers={"If-None-Exist": "family=Twin"})
    assert ambiguous.status_code == 412
    assert clinic.get("/fhir/Patient", params={"family": "Twin"}).json()["total"] == 2


def test_conditional_create_does_not_match_other_clinics_records(fhir: FhirClients) -> None:
    mine, theirs = fhir.client("clinic"), fhir.client("clinic")
    _create(theirs, patient("shared-1"))
    criteria = {"If-None-Exist": f"identifier={LOCAL_ID}|shared-1"}
    created = mine.post("/fhir/Patient", json=patient("shared-1"), headers=criteria)
    assert created.status_code == 201


def test_conditional_update_on_identifier(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    url = f"/fhir/Patient?identifier={LOCAL_ID}|cu-1"
    created = clinic.put(url, json=patient("cu-1"))
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    updated = clinic.put(url, json=patient("cu-1", family="Updated"))
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == pid
    assert updated.json()["meta"]["versionId"] == "2"
    assert clinic.get(f"/fhir/Patient/{pid}").json()["name"][0]["family"] == "Updated"
    wrong_id = clinic.put(url, json={**patient("cu-1"), "id": "someone-else"})
    assert wrong_id.status_code == 400


def test_conditional_read_with_if_none_match(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    pid = _create(clinic, patient())
    unchanged = clinic.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["ETag"] == 'W/"1"'
    clinic.put(f"/fhir/Patient/{pid}", json={**patient(family="Changed"), "id": pid})
    changed = clinic.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'})
    assert changed.status_code == 200
    assert changed.json()["name"][0]["family"] == "Changed"

"""The base and every path answer with or without a trailing slash, never by a redirect
(CONTRACT "FHIR API"; issue 10). httpx does not follow redirects by default, like many
integrations, so a 307 here would be a failed request."""

from __future__ import annotations

import httpx
import pytest

from auth.client import ASSERTION_TYPE
from tests.support.clients import FHIR_JSON, FhirClients, assertion
from tests.support.logscan import SECRETS


def _patient() -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://clinic.example.org/Id/local", "value": "slash-1"}],
        "name": [{"family": "Slash", "given": ["Sam"]}],
    }


def test_metadata_and_smart_configuration_with_slash(fhir: FhirClients) -> None:
    http = fhir.anonymous()
    for path in ("/fhir/metadata/", "/fhir/.well-known/smart-configuration/"):
        response = http.get(path)
        assert response.status_code == 200, (path, response.status_code)
    assert http.get("/fhir/metadata/").json()["resourceType"] == "CapabilityStatement"


def test_type_and_instance_paths_with_slash(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    created = clinic.post("/fhir/Patient/", json=_patient())
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert clinic.get(f"/fhir/Patient/{pid}/").json()["id"] == pid
    assert clinic.get(f"/fhir/Patient/{pid}/_history/1/").status_code == 200
    assert clinic.get(f"/fhir/Patient/{pid}/_history/").json()["type"] == "history"
    found = clinic.get("/fhir/Patient/", params={"_id": pid})
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]
    updated = clinic.put(f"/fhir/Patient/{pid}/", json={**created.json(), "gender": "other"})
    assert updated.status_code == 200, updated.text
    assert clinic.delete(f"/fhir/Patient/{pid}/").status_code == 204


def test_transaction_posted_to_base_url_with_empty_path(fhir: FhirClients) -> None:
    """``httpx.Client(base_url=".../fhir").post("")`` sends ``POST /fhir/``."""
    clinic = fhir.client("clinic")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _patient(), "request": {"method": "POST", "url": "Patient"}}],
    }
    headers = {"Authorization": f"Bearer {clinic.token}", **FHIR_JSON}
    with httpx.Client(base_url=f"{fhir.base_url}/fhir", headers=headers) as http:
        response = http.post("", json=bundle)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "transaction-response"
        assert response.json()["entry"][0]["response"]["status"].startswith("201")
        assert http.get("Patient/").json()["total"] == 1


@pytest.mark.parametrize("path", ["/fhir//", "/fhir/Patient//"])
def test_only_one_slash_is_forgiven(fhir: FhirClients, path: str) -> None:
    clinic = fhir.client("clinic")
    response = clinic.get(path)
    assert response.status_code in (400, 404), response.status_code
    assert response.json()["resourceType"] == "OperationOutcome"


def test_docs_and_openapi_still_served(fhir: FhirClients) -> None:
    http = fhir.anonymous()
    assert http.get("/openapi.json").status_code == 200
    assert http.get("/docs").status_code == 200


def test_token_endpoint_with_slash(fhir: FhirClients) -> None:
    client_id = "slash-client"
    fhir.register(client_id, "slash-org", "clinic")
    response = fhir.http.post(
        "/auth/token/",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id, fhir.token_url),
            "scope": "system/Patient.rs",
        },
    )
    assert response.status_code == 200, response.text
    SECRETS.append(response.json()["access_token"])

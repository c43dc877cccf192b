"""Issue 10: a method a path does not serve is 405 with an OperationOutcome and an ``Allow`` header
listing exactly the methods of that path, as the OpenAPI document gives them (RFC 9110 §15.5.6).

Before, ``PUT /fhir/metadata`` and ``PUT /fhir/Patient/_history`` reached a generic route that
answered 400 for the missing body, and Starlette's 405 listed the methods of one route only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.clients import FhirClients

CASES = [
    # (method, path, the methods the path serves)
    ("PUT", "/fhir/metadata", "GET"),
    ("POST", "/fhir/.well-known/smart-configuration", "GET"),
    ("GET", "/fhir", "POST"),
    ("DELETE", "/fhir/Patient", "GET, POST, PUT"),
    ("PATCH", "/fhir/Patient", "GET, POST, PUT"),
    ("POST", "/fhir/Patient/abc", "GET, PUT, PATCH, DELETE"),
    ("OPTIONS", "/fhir/Patient/abc", "GET, PUT, PATCH, DELETE"),
    ("PUT", "/fhir/Patient/_history", "GET"),
    ("POST", "/fhir/Patient/abc/_history", "GET"),
    ("DELETE", "/fhir/Patient/abc/_history/1", "GET"),
    ("PUT", "/fhir/Patient/_search", "POST"),
    ("GET", "/fhir/Patient/_search", "POST"),
    ("GET", "/fhir/Questionnaire/$populate", "POST"),
    ("PUT", "/fhir/Task/$delivery-status", "GET"),
    ("DELETE", "/fhir/Endpoint/abc/$rotate-secret", "POST"),
    # Read-only types: writes are not offered at all.
    ("POST", "/fhir/AuditEvent", "GET"),
    ("PUT", "/fhir/AuditEvent/abc", "GET"),
    ("DELETE", "/fhir/Observation/abc", "GET"),
    ("GET", "/auth/token", "POST"),
    # With a trailing slash too (api/slashes.py strips it first).
    ("PUT", "/fhir/metadata/", "GET"),
]


def _document(fhir: FhirClients) -> dict[str, Any]:
    body: dict[str, Any] = fhir.anonymous().get("/openapi.json").json()
    return body


@pytest.mark.parametrize(("method", "path", "allow"), CASES)
def test_unsupported_method_is_405_with_the_paths_methods(
    fhir: FhirClients, method: str, path: str, allow: str
) -> None:
    # No token: which methods a path serves is public (the CapabilityStatement says as much).
    response = fhir.anonymous().request(method, path, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
    assert method in outcome["issue"][0]["diagnostics"]


def test_allow_matches_the_document_for_every_path(fhir: FhirClients) -> None:
    http = fhir.anonymous()
    for template, item in _document(fhir)["paths"].items():
        path = template.replace("{id}", "abc").replace("{resource_id}", "abc").replace("{vid}", "1")
        documented = {m.upper() for m in item}
        response = http.request("TRACE", path)
        assert response.status_code == 405, (template, response.text)
        assert set(response.headers["allow"].split(", ")) == documented, template


def test_supported_methods_still_reach_their_routes(fhir: FhirClients) -> None:
    http = fhir.anonymous()
    assert http.get("/fhir/metadata").status_code == 200
    # Authenticated interactions are routed on, to the token check.
    for method, path in (("GET", "/fhir/Patient"), ("PUT", "/fhir/Patient/abc"), ("POST", "/fhir")):
        assert http.request(method, path).status_code == 401, (method, path)
    clinic = fhir.client("clinic")
    # Conditional update (PUT on the type) is served, and documented.
    patient = {"resourceType": "Patient", "identifier": [{"system": "https://example.org/id", "value": "1"}]}
    answer = clinic.put("/fhir/Patient?identifier=https://example.org/id|1", json=patient)
    assert answer.status_code == 201, answer.text


def test_paths_the_document_does_not_describe_go_to_the_router(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    # An unknown type or a path too long for any interaction: 404, not 405.
    assert clinic.put("/fhir/NoSuchType/abc", json={"resourceType": "Patient"}).status_code == 404
    http: httpx.Client = fhir.anonymous()
    assert http.put("/fhir/Patient/abc/_history/1/more").status_code == 404


def test_a_compartment_search_is_404_saying_what_to_send_instead(fhir: FhirClients) -> None:
    # fhir-kit-client's compartmentSearch sends Patient/{id}/ServiceRequest; the hub has no compartments.
    clinic = fhir.client("clinic")
    response = clinic.get("/fhir/Patient/abc/ServiceRequest")
    assert response.status_code == 404
    [issue] = response.json()["issue"]
    assert issue["code"] == "not-found"
    assert "ServiceRequest?subject=Patient/abc" in issue["diagnostics"]
    # Any other unknown path keeps the plain answer.
    assert clinic.get("/fhir/Patient/abc/_history/1/more").json()["issue"][0]["diagnostics"] == "Not Found"

"""Formats and conformance over real HTTP: JSON flavours accepted, XML refused, and a
CapabilityStatement that says what the server does (http://hl7.org/fhir/R4/http.html#mime-type)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.rest import registry
from service.search.params import SEARCH_PARAMS
from tests.support.clients import Client, FhirClients

ORG = {"resourceType": "Organization", "name": "Formats"}


@pytest.fixture
def admin(fhir: FhirClients) -> Client:
    return fhir.client("admin", "hub")


@pytest.fixture
def statement(fhir: FhirClients) -> dict[str, Any]:
    response = httpx.get(f"{fhir.base_url}/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "content_type", ["application/fhir+json", "application/json", "application/fhir+json; charset=utf-8"]
)
def test_json_content_types_are_accepted(admin: Client, content_type: str) -> None:
    response = admin.post("/fhir/Organization", json=ORG, headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")


@pytest.mark.parametrize(
    "fmt", ["json", "application/json", "application/fhir+json", "application/fhir json"]
)
def test_json_format_parameter_values(admin: Client, fmt: str) -> None:
    assert admin.get("/fhir/Organization", params={"_format": fmt}).status_code == 200
    assert admin.post("/fhir/Organization", params={"_format": fmt}, json=ORG).status_code == 201


@pytest.mark.parametrize(
    "accept",
    ["application/fhir+json", "application/json", "*/*", "application/fhir+json, application/fhir+xml;q=0.5"],
)
def test_json_accept_headers(admin: Client, accept: str) -> None:
    assert admin.get("/fhir/Organization", headers={"Accept": accept}).status_code == 200


@pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "text/xml", "ttl", "html"])
def test_other_formats_are_415(admin: Client, fmt: str) -> None:
    response = admin.get("/fhir/Organization", params={"_format": fmt})
    assert response.status_code == 415, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_xml_body_on_update_and_search_is_415(admin: Client) -> None:
    oid = admin.post("/fhir/Organization", json=ORG).json()["id"]
    xml = b'<Organization xmlns="http://hl7.org/fhir"><name value="x"/></Organization>'
    response = admin.put(
        f"/fhir/Organization/{oid}", content=xml, headers={"Content-Type": "application/fhir+xml"}
    )
    assert response.status_code == 415
    search = admin.post(
        "/fhir/Organization/_search", content=xml, headers={"Content-Type": "application/xml"}
    )
    assert search.status_code == 415
    assert admin.get(f"/fhir/Organization/{oid}").json()["meta"]["versionId"] == "1"


def test_capability_statement_is_derived_from_the_registry(statement: dict[str, Any]) -> None:
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    assert not any("xml" in f for f in statement["format"])
    rest = statement["rest"][0]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == set(registry.TYPES)
    audit = {i["code"] for i in resources["AuditEvent"]["interaction"]}
    assert "create" not in audit
    assert "read" in audit
    patient = resources["Patient"]
    assert {i["code"] for i in patient["interaction"]} >= {
        "read",
        "vread",
        "create",
        "update",
        "delete",
        "search-type",
    }
    assert patient["versioning"] == "versioned-update"
    assert patient["conditionalCreate"] is True
    params = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert params["birthdate"] == "date"
    assert params["identifier"] == "token"
    assert params["_id"] == "token"
    assert params["_lastUpdated"] == "date"
    for rtype, defined in SEARCH_PARAMS.items():
        if rtype not in resources:
            continue
        listed = {p["name"] for p in resources[rtype]["searchParam"]}
        assert set(defined) <= listed, rtype
    assert "PractitionerRole:organization" in resources["PractitionerRole"]["searchInclude"]
    assert "HealthcareService:organization" in resources["Organization"]["searchRevInclude"]


def test_metadata_needs_no_token_but_resources_do(fhir: FhirClients) -> None:
    assert httpx.get(f"{fhir.base_url}/fhir/metadata").status_code == 200
    assert httpx.get(f"{fhir.base_url}/fhir/Organization").status_code == 401


def test_prefer_applies_to_update(admin: Client) -> None:
    created = admin.post("/fhir/Organization", json=ORG).json()
    body = {**ORG, "id": created["id"], "name": "Renamed"}
    minimal = admin.put(
        f"/fhir/Organization/{created['id']}", json=body, headers={"Prefer": "return=minimal"}
    )
    assert minimal.status_code == 200
    assert minimal.content == b""
    assert minimal.headers["ETag"] == 'W/"2"'
    outcome = admin.put(
        f"/fhir/Organization/{created['id']}", json=body, headers={"Prefer": "return=OperationOutcome"}
    )
    assert outcome.json()["resourceType"] == "OperationOutcome"
    assert outcome.headers["ETag"] == 'W/"3"'


def test_read_answers_carry_version_headers(admin: Client) -> None:
    created = admin.post("/fhir/Organization", json=ORG)
    oid = created.json()["id"]
    read = admin.get(f"/fhir/Organization/{oid}")
    assert read.headers["ETag"] == 'W/"1"'
    assert read.headers["Last-Modified"] == created.headers["Last-Modified"]
    vread = admin.get(f"/fhir/Organization/{oid}/_history/1")
    assert vread.headers["ETag"] == 'W/"1"'

"""Issue 10: the OpenAPI document describes each resource type as its own paths, and its worked
examples succeed as sent once the placeholder ids are filled in."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.rest import registry
from tests.support.clients import Client, FhirClients


@pytest.fixture
def document(fhir: FhirClients) -> dict[str, Any]:
    response = fhir.anonymous().get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_each_type_has_its_own_tagged_paths(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "/fhir/{resource_type}" not in paths
    for name in ("ServiceRequest", "Questionnaire", "QuestionnaireResponse"):
        assert set(paths[f"/fhir/{name}"]) >= {"get", "post"}
        assert set(paths[f"/fhir/{name}/{{id}}"]) >= {"get", "put", "delete"}
        assert paths[f"/fhir/{name}/_search"]["post"]["tags"] == [name]
        assert f"/fhir/{name}/{{id}}/_history/{{vid}}" in paths
        for operation in (*paths[f"/fhir/{name}"].values(), *paths[f"/fhir/{name}/{{id}}"].values()):
            assert operation["tags"] == [name]
    assert {t["name"] for t in document["tags"]} >= {"Authentication", *registry.TYPES}


def test_read_only_types_offer_no_writes(document: dict[str, Any]) -> None:
    assert set(document["paths"]["/fhir/AuditEvent"]) == {"get"}
    assert set(document["paths"]["/fhir/AuditEvent/{id}"]) == {"get"}


def test_search_parameters_are_listed_with_their_fhir_types(document: dict[str, Any]) -> None:
    params = {p["name"]: p for p in document["paths"]["/fhir/ServiceRequest"]["get"]["parameters"]}
    assert params["patient"]["in"] == "query"
    assert params["patient"]["x-fhir-type"] == "reference"
    assert "reference" in params["patient"]["description"]
    assert params["status"]["x-fhir-type"] == "token"
    assert params["authored"]["x-fhir-type"] == "date"
    assert "_count" in params
    task = {p["name"] for p in document["paths"]["/fhir/Task"]["get"]["parameters"]}
    assert {"owner", "focus", "status"} <= task


def test_responses_and_bodies_use_the_type_schema(document: dict[str, Any]) -> None:
    create = document["paths"]["/fhir/ServiceRequest"]["post"]
    schema = create["requestBody"]["content"]["application/fhir+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ServiceRequest"}
    # The created resource, or the OperationOutcome that `Prefer: return=OperationOutcome` asks for.
    created = create["responses"]["201"]["content"]["application/fhir+json"]["schema"]
    assert created == {"anyOf": [schema, {"$ref": "#/components/schemas/OperationOutcome"}]}
    component = document["components"]["schemas"]["ServiceRequest"]
    assert component["properties"]["resourceType"]["const"] == "ServiceRequest"
    assert "intent" in component["properties"]
    search = document["paths"]["/fhir/ServiceRequest"]["get"]["responses"]["200"]
    assert search["content"]["application/fhir+json"]["schema"] == {"$ref": "#/components/schemas/Bundle"}


def test_operations_have_parameters_bodies_and_the_token_endpoint_is_authentication(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    for path in (
        "/fhir/Questionnaire/$populate",
        "/fhir/Questionnaire/{resource_id}/$populate",
        "/fhir/QuestionnaireResponse/{resource_id}/$suggest-referrals",
        "/fhir/Endpoint/{resource_id}/$rotate-secret",
    ):
        body = paths[path]["post"]["requestBody"]["content"]["application/fhir+json"]
        assert body["schema"] == {"$ref": "#/components/schemas/Parameters"}, path
        assert body["examples"]["example"]["value"]["resourceType"] == "Parameters", path
    assert paths["/fhir/Questionnaire/$populate"]["post"]["requestBody"]["required"] is True
    assert paths["/fhir/Task/{resource_id}/$delivery-status"]["get"]["responses"]["200"]["content"]
    assert paths["/auth/token"]["post"]["tags"] == ["Authentication"]
    assert "application/x-www-form-urlencoded" in paths["/auth/token"]["post"]["requestBody"]["content"]
    assert paths["/fhir/.well-known/smart-configuration"]["get"]["tags"] == ["Authentication"]


# -- the worked examples, sent as a developer in /docs would -------------------------------------


def _example(operation: dict[str, Any], ids: dict[str, str]) -> Any:
    content = operation["requestBody"]["content"]
    media = next(iter(content.values()))
    text = json.dumps(next(iter(media["examples"].values()))["value"])
    for placeholder, value in ids.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_every_create_example_succeeds_as_sent(fhir: FhirClients, document: dict[str, Any]) -> None:
    paths = document["paths"]
    admin = fhir.client("admin", "hub")
    ids: dict[str, str] = {}

    def create(caller: Client, name: str) -> str:
        return _created(caller.post(f"/fhir/{name}", json=_example(paths[f"/fhir/{name}"]["post"], ids)))

    ids["PARTNER_ORG_ID"] = create(admin, "Organization")
    ids["CLINIC_ORG_ID"] = create(admin, "Organization")
    clinic = fhir.client("clinic", ids["CLINIC_ORG_ID"])
    ids["SERVICE_ID"] = create(admin, "HealthcareService")
    ids["PATIENT_ID"] = create(clinic, "Patient")
    ids["CONSENT_ID"] = create(clinic, "Consent")
    referral = create(clinic, "ServiceRequest")
    tasks = clinic.get(f"/fhir/Task?focus=ServiceRequest/{referral}").json()["entry"]
    assert len(tasks) == 1
    ids["TASK_ID"] = tasks[0]["resource"]["id"]
    ids["SERVICE_REQUEST_ID"] = referral
    assessment = create(clinic, "QuestionnaireResponse")
    for name in (
        "Location",
        "Endpoint",
        "Practitioner",
        "PractitionerRole",
        "CodeSystem",
        "ValueSet",
        "Questionnaire",
    ):
        ids[f"{name.upper()}_ID"] = create(admin, name)
    # Every type with a create example was exercised above.
    with_examples = {
        path.removeprefix("/fhir/")
        for path, item in paths.items()
        if path.count("/") == 2 and "post" in item and "examples" in str(item["post"].get("requestBody"))
    }
    assert with_examples == {
        "Organization", "HealthcareService", "Patient", "Consent", "ServiceRequest", "QuestionnaireResponse",
        "Location", "Endpoint", "Practitioner", "PractitionerRole", "CodeSystem", "ValueSet", "Questionnaire",
    }  # fmt: skip

    ids["ID"] = ids["PARTNER_ORG_ID"]
    update = admin.put(
        f"/fhir/Organization/{ids['ID']}", json=_example(paths["/fhir/Organization/{id}"]["put"], ids)
    )
    assert update.status_code == 200, update.text

    populate = clinic.post(
        "/fhir/Questionnaire/$populate", json=_example(paths["/fhir/Questionnaire/$populate"]["post"], ids)
    )
    assert populate.status_code == 200, populate.text
    assert populate.json()["parameter"][0]["resource"]["resourceType"] == "QuestionnaireResponse"
    suggest = paths["/fhir/QuestionnaireResponse/{resource_id}/$suggest-referrals"]["post"]
    suggested = clinic.post(
        f"/fhir/QuestionnaireResponse/{assessment}/$suggest-referrals", json=_example(suggest, ids)
    )
    assert suggested.status_code == 200, suggested.text

    rotate = paths["/fhir/Endpoint/{resource_id}/$rotate-secret"]["post"]
    rotated = admin.post(f"/fhir/Endpoint/{ids['ENDPOINT_ID']}/$rotate-secret", json=_example(rotate, ids))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["parameter"][0]["valueString"].startswith("whsec_")

    partner = fhir.client("partner", ids["PARTNER_ORG_ID"])
    accept = _example(paths["/fhir/Task/{id}"]["put"], ids)
    # The Task example is the shape of the change: the Task as read, with the example's status.
    assert accept["id"] == ids["TASK_ID"]
    current = partner.get(f"/fhir/Task/{ids['TASK_ID']}").json()
    accepted = partner.put(f"/fhir/Task/{ids['TASK_ID']}", json={**current, "status": accept["status"]})
    assert accepted.status_code == 200, accepted.text

    if "patch" in paths["/fhir/Task/{id}"]:
        second = create(clinic, "ServiceRequest")
        task = clinic.get(f"/fhir/Task?focus=ServiceRequest/{second}").json()["entry"][0]["resource"]
        media = paths["/fhir/Task/{id}"]["patch"]["requestBody"]["content"]["application/json-patch+json"]
        patched = partner.http.patch(
            f"/fhir/Task/{task['id']}",
            content=json.dumps(next(iter(media["examples"].values()))["value"]),
            headers={
                "Authorization": f"Bearer {partner.token}",
                "Content-Type": "application/json-patch+json",
            },
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["status"] == "accepted"

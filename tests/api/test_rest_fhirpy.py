"""A real third-party FHIR client (fhirpy) against the live server, with nothing special-cased."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound

from tests.support.clients import FhirClients

LOCAL = "https://clinic.example.org/Id/local"


def _client(fhir: FhirClients, role: str, org: str | None = None) -> SyncFHIRClient:
    caller = fhir.client(role, org)
    return SyncFHIRClient(
        fhir.base_url + "/fhir",
        authorization=f"Bearer {caller.token}",
        extra_headers={"Accept": "application/fhir+json"},
    )


def test_crud_with_fhirpy(fhir: FhirClients) -> None:
    client = _client(fhir, "clinic")
    patient = client.resource(
        "Patient",
        identifier=[{"system": LOCAL, "value": "fhirpy-1"}],
        name=[{"family": "Pyclient", "given": ["Fi"]}],
        gender="female",
    )
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["family"] == "Pyclient"

    fetched["birthDate"] = "1990-02-03"
    fetched.save()
    assert fetched["meta"]["versionId"] == "2"
    again = client.resources("Patient").search(_id=patient.id).get()
    assert again["birthDate"] == "1990-02-03"

    searched = client.resources("Patient").search(family="pycl", birthdate__ge="1990").fetch()
    assert [p.id for p in searched] == [patient.id]
    assert client.resources("Patient").search(identifier=f"{LOCAL}|fhirpy-1").count() == 1

    fetched.delete()  # type: ignore[no-untyped-call]
    with pytest.raises(ResourceNotFound):  # 410 Gone
        client.reference("Patient", patient.id).to_resource()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", "never-existed").to_resource()


def test_pagination_with_fetch_all(fhir: FhirClients) -> None:
    client = _client(fhir, "admin", "hub")
    made = []
    for i in range(37):
        org = client.resource("Organization", name=f"Paged {i:02d}", active=True)
        org.save()
        made.append(org.id)
    everything = client.resources("Organization").search(name="paged").limit(5).fetch_all()
    assert [o.id for o in everything] == made
    by_name = client.resources("Organization").search(name="paged").sort("-name").limit(8).fetch_all()
    assert [o["name"] for o in by_name] == [f"Paged {i:02d}" for i in reversed(range(37))]
    iterated = [o.id for o in client.resources("Organization").search(name="paged").limit(6)]
    assert iterated == made
    assert client.resources("Organization").search(name="paged").count() == 37


def test_include_and_conditional_update_with_fhirpy(fhir: FhirClients) -> None:
    client = _client(fhir, "admin", "hub")
    org = client.resource("Organization", name="Include Me")
    org.save()
    role = client.resource("PractitionerRole", organization=org.to_reference())
    role.save()
    bundle = client.resources("PractitionerRole").include("PractitionerRole", "organization").fetch_raw()
    kinds = sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle.entry)
    assert kinds == [("Organization", "include"), ("PractitionerRole", "match")]

    identifier = "https://wraparound.example.org/Id/partner|P-17"
    service = client.resource(
        "HealthcareService", name="Advice", identifier=[{"system": identifier.split("|")[0], "value": "P-17"}]
    )
    _, created = client.resources("HealthcareService").search(identifier=identifier).update(service)
    assert created
    service["name"] = "Advice and support"
    saved, created = client.resources("HealthcareService").search(identifier=identifier).update(service)
    assert not created
    assert saved["meta"]["versionId"] == "2"
    assert client.resources("HealthcareService").search(identifier=identifier).count() == 1


def test_version_conflict_and_refresh_with_fhirpy(fhir: FhirClients) -> None:
    client = _client(fhir, "admin", "hub")
    org = client.resource("Organization", name="Versioned")
    org.save()
    stale = client.reference("Organization", org.id).to_resource()
    org["name"] = "Versioned again"
    org.save()
    stale["name"] = "Lost update"
    # fhirpy reports 412 Precondition Failed as MultipleResourcesFound (its conditional-create reading).
    with pytest.raises(MultipleResourcesFound):
        client._do_request(
            "put", f"Organization/{org.id}", data=dict(stale), extra_headers={"If-Match": 'W/"1"'}
        )
    assert client.reference("Organization", org.id).to_resource()["name"] == "Versioned again"
    stale.refresh()  # sends If-None-Match; a full 200 answer is fine
    assert stale["name"] == "Versioned again"
    assert stale["meta"]["versionId"] == "2"
    with pytest.raises(OperationOutcome):  # conditional delete is not supported: 405 with an OperationOutcome
        client.resources("Organization").search(name="Versioned").delete()

"""fhirpy (PyPI), unmodified, sync and async, against the live hub: the clinic flow of
_clinic_flow.py, then paging, includes, conditional update and version conflicts.

fhirpy has no SMART Backend Services grant: it is given the bearer tokens the test minted. Its
``patch()`` sends a partial resource as ``application/json`` (a JSON Merge Patch, RFC 7386) without
If-Match, and its ``get_or_create`` sends the conditional criteria as search parameters on the POST
(ADR 0010). A 404 and a 410 are both ``ResourceNotFound``; the OperationOutcome tells them apart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from fhirpy import AsyncFHIRClient, SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound

from tests.clients._clinic_flow import BIRTH_DATE, Flow, check
from tests.support.clients import FhirClients

LOCAL = "https://clinic.example.org/Id/local"
TELECOM = [{"system": "phone", "value": "01632 960000"}]


def _status(error: ResourceNotFound) -> int:
    # R4 issue type "deleted" is the hub's 410 (http.html#delete); anything else here is a 404.
    outcome = json.loads(str(error))
    return 410 if outcome["issue"][0]["code"] == "deleted" else 404


def _summary(patient: Any) -> dict[str, Any]:
    return {
        "id": patient.id,
        "versionId": patient["meta"]["versionId"],
        "family": patient["name"][0]["family"],
    }


def _sync_flow(flow: Flow) -> dict[str, Any]:
    base = flow.hub.fhir.base_url + "/fhir"
    clinic = SyncFHIRClient(base, authorization=f"Bearer {flow.hub.clinic.token}")
    result: dict[str, Any] = {"token": {"minted": True}}
    patient = clinic.resource("Patient", **flow.patient(1))
    patient.save()
    result["created"] = {"id": patient.id, "versionId": patient["meta"]["versionId"]}
    read = clinic.reference("Patient", patient.id).to_resource()
    result["read"] = _summary(read)
    result["searched"] = [p.id for p in clinic.resources("Patient").search(**flow.search()).fetch()]
    read["birthDate"] = BIRTH_DATE
    read.save()
    result["updated"] = {"versionId": read["meta"]["versionId"], "birthDate": read["birthDate"]}
    read.patch(gender="female", telecom=TELECOM)
    result["patched"] = {"versionId": read["meta"]["versionId"], "gender": read["gender"]}

    criteria = clinic.resources("Patient").search(identifier=flow.identifier(2))
    made, created = criteria.get_or_create(clinic.resource("Patient", **flow.patient(2)))
    again, created_again = criteria.get_or_create(clinic.resource("Patient", **flow.patient(2)))
    assert (created, created_again) == (True, False)
    result["conditional"] = {"first": made.id, "again": again.id}
    paged = clinic.resources("Patient").search(family=flow.family).limit(1).fetch_all()
    result["paged"] = [p.id for p in paged]

    doomed = clinic.resource("Patient", **flow.patient(3))
    doomed.save()
    doomed.delete()  # type: ignore[no-untyped-call]
    with pytest.raises(ResourceNotFound) as gone:
        clinic.reference("Patient", doomed.id).to_resource()
    result["deleted"] = {"id": doomed.id, "statusAfter": _status(gone.value)}

    request = clinic.resource("ServiceRequest", **flow.referral(patient.id))
    request.save()
    partner = SyncFHIRClient(base, authorization=f"Bearer {flow.hub.partner.token}")
    task = partner.resources("Task").search(focus=f"ServiceRequest/{request.id}").get()
    result["referral"] = {"serviceRequest": request.id, "task": task.id, "taskStatus": task["status"]}
    result["referral"]["owner"] = task["owner"]["reference"]
    task.patch(status="accepted")
    result["referral"]["accepted"] = {"status": task["status"], "versionId": task["meta"]["versionId"]}
    return result


async def _async_flow(flow: Flow) -> dict[str, Any]:
    base = flow.hub.fhir.base_url + "/fhir"
    clinic = AsyncFHIRClient(base, authorization=f"Bearer {flow.hub.clinic.token}")
    result: dict[str, Any] = {"token": {"minted": True}}
    patient = clinic.resource("Patient", **flow.patient(1))
    await patient.save()
    result["created"] = {"id": patient.id, "versionId": patient["meta"]["versionId"]}
    read = await clinic.reference("Patient", patient.id).to_resource()
    result["read"] = _summary(read)
    result["searched"] = [p.id for p in await clinic.resources("Patient").search(**flow.search()).fetch()]
    read["birthDate"] = BIRTH_DATE
    await read.save()
    result["updated"] = {"versionId": read["meta"]["versionId"], "birthDate": read["birthDate"]}
    await read.patch(gender="female", telecom=TELECOM)
    result["patched"] = {"versionId": read["meta"]["versionId"], "gender": read["gender"]}

    criteria = clinic.resources("Patient").search(identifier=flow.identifier(2))
    made, created = await criteria.get_or_create(clinic.resource("Patient", **flow.patient(2)))
    again, created_again = await criteria.get_or_create(clinic.resource("Patient", **flow.patient(2)))
    assert (created, created_again) == (True, False)
    result["conditional"] = {"first": made.id, "again": again.id}
    paged = await clinic.resources("Patient").search(family=flow.family).limit(1).fetch_all()
    result["paged"] = [p.id for p in paged]

    doomed = clinic.resource("Patient", **flow.patient(3))
    await doomed.save()
    await doomed.delete()  # type: ignore[no-untyped-call]
    with pytest.raises(ResourceNotFound) as gone:
        await clinic.reference("Patient", doomed.id).to_resource()
    result["deleted"] = {"id": doomed.id, "statusAfter": _status(gone.value)}

    request = clinic.resource("ServiceRequest", **flow.referral(patient.id))
    await request.save()
    partner = AsyncFHIRClient(base, authorization=f"Bearer {flow.hub.partner.token}")
    task = await partner.resources("Task").search(focus=f"ServiceRequest/{request.id}").get()
    result["referral"] = {"serviceRequest": request.id, "task": task.id, "taskStatus": task["status"]}
    result["referral"]["owner"] = task["owner"]["reference"]
    await task.patch(status="accepted")
    result["referral"]["accepted"] = {"status": task["status"], "versionId": task["meta"]["versionId"]}
    return result


def test_fhirpy_sync_clinic_flow(flow_for: Callable[[str], Flow]) -> None:
    flow = flow_for("fhirpy")
    check(flow, _sync_flow(flow), patch=True, conditional=True)


def test_fhirpy_async_clinic_flow(flow_for: Callable[[str], Flow]) -> None:
    flow = flow_for("fhirpyasync")
    check(flow, asyncio.run(_async_flow(flow)), patch=True, conditional=True)


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

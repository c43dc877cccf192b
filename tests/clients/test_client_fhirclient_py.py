"""SMART's fhirclient for Python (PyPI `fhirclient`), unmodified, through the clinic flow.

It is the one client here that does SMART Backend Services itself: given a signed client assertion
(`jwt_token`) it reads the token endpoint from the CapabilityStatement's oauth-uris extension and
posts the client_credentials grant. It adds `launch/patient` to the scope it asks for (its default
for a client without a patient); the hub grants the supported subset and says so in `scope`.
It has no PATCH, no conditional create and no If-Match: it creates plainly, and has no patch step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from fhirclient import client as smart
from fhirclient.models.fhirdate import FHIRDate
from fhirclient.models.patient import Patient
from fhirclient.models.servicerequest import ServiceRequest
from fhirclient.models.task import Task

from tests.clients._clinic_flow import BIRTH_DATE, Flow, check
from tests.support.clients import assertion


def _connect(flow: Flow, client_id: str) -> smart.FHIRClient:
    fhir = flow.hub.fhir
    settings = {
        "app_id": client_id,
        "api_base": fhir.base_url + "/fhir",
        "jwt_token": assertion(client_id, fhir.token_url),
        "scope": "system/*.cruds",
    }
    client = smart.FHIRClient(settings=settings)
    # Its default for a client with no patient: the hub drops what it cannot grant (RFC 6749 §3.3).
    assert client.desired_scope == "launch/patient system/*.cruds"
    client.prepare()  # the CapabilityStatement, parsed by its R4 models, names the token endpoint
    client.authorize()
    assert client.ready
    return client


def _flow(flow: Flow) -> dict[str, Any]:
    clinic = _connect(flow, flow.hub.clinic.client_id)
    server = clinic.server
    result: dict[str, Any] = {"token": {"scope": clinic.launch_context["scope"]}}
    created = Patient(Patient(flow.patient(1)).create(server))
    assert created.meta is not None
    result["created"] = {"id": created.id, "versionId": created.meta.versionId}
    read = Patient.read(created.id, server)
    result["read"] = {"id": read.id, "versionId": read.meta.versionId, "family": read.name[0].family}
    found = Patient.where(flow.search()).perform_resources_iter(server)
    result["searched"] = [p.id for p in found]
    read.birthDate = FHIRDate(BIRTH_DATE)
    updated = Patient(read.update())
    result["updated"] = {"versionId": updated.meta.versionId, "birthDate": updated.birthDate.isostring}
    result["patched"] = None
    second = Patient(Patient(flow.patient(2)).create(server))
    result["conditional"] = {"first": second.id, "again": None}
    paged = Patient.where({"family": flow.family, "_count": "1"}).perform_resources_iter(server)
    result["paged"] = [p.id for p in paged]

    doomed = Patient(Patient(flow.patient(3)).create(server))
    doomed.delete(server)
    with pytest.raises(requests.HTTPError) as gone:
        Patient.read(doomed.id, server)
    assert gone.value.response is not None
    result["deleted"] = {"id": doomed.id, "statusAfter": gone.value.response.status_code}

    request = ServiceRequest(ServiceRequest(flow.referral(created.id)).create(server))
    partner = _connect(flow, flow.hub.partner.client_id)
    tasks = Task.where({"focus": f"ServiceRequest/{request.id}"}).perform_resources_iter(partner.server)
    task = next(tasks)
    result["referral"] = {
        "serviceRequest": request.id,
        "task": task.id,
        "taskStatus": task.status,
        "owner": task.owner.reference,
    }
    task.status = "accepted"
    accepted = Task(task.update())
    result["referral"]["accepted"] = {"status": accepted.status, "versionId": accepted.meta.versionId}
    return result


def test_fhirclient_python_clinic_flow(flow_for: Callable[[str], Flow]) -> None:
    flow = flow_for("fhirclientpy")
    check(flow, _flow(flow), patch=False, conditional=False)

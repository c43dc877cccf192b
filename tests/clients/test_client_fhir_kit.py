"""fhir-kit-client (npm), unmodified, through the clinic flow against the live hub, plus a
transaction Bundle (which it posts to the base with a trailing slash)."""

from __future__ import annotations

from collections.abc import Callable

from tests.clients._clinic_flow import Flow, RunJs, check
from tests.referrals._workflow_hub import ok


def test_fhir_kit_client_clinic_flow(run_js: RunJs, flow_for: Callable[[str], Flow]) -> None:
    flow = flow_for("fhirkit")
    result = run_js("fhir_kit.mjs", flow.config())
    check(flow, result, patch=True, conditional=True)

    (patient_status, patient_at), (request_status, request_at) = result["transaction"]
    assert (patient_status, request_status) == ("201 Created", "201 Created")
    patient_id = patient_at.split("/")[1]
    request = ok(flow.hub.clinic.get(f"/fhir/{request_at.split('/_history')[0]}"))
    assert request["subject"] == {"reference": f"Patient/{patient_id}"}  # the urn:uuid was resolved
    assert ok(flow.hub.clinic.get(f"/fhir/Patient/{patient_id}"))["identifier"][0]["value"] == f"{flow.tag}-4"

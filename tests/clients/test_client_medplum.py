"""The Medplum client (npm `@medplum/core`, MedplumClient), unmodified, through the clinic flow
against the live hub's FHIR base with Node's built-in fetch."""

from __future__ import annotations

from collections.abc import Callable

from tests.clients._clinic_flow import Flow, RunJs, check


def test_medplum_client_clinic_flow(run_js: RunJs, flow_for: Callable[[str], Flow]) -> None:
    flow = flow_for("medplum")
    result = run_js("medplum.mjs", flow.config())
    check(flow, result, patch=True, conditional=True)
    # startJwtAssertionLogin sends no scope; SMART Backend Services requires one (RFC 6749 §3.3
    # leaves the choice to the server, and the hub has no default scope).
    assert result["assertionLogin"] == "scope is required"

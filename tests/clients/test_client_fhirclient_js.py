"""SMART's fhirclient for JavaScript (client-js, npm `fhirclient`), unmodified, through the clinic
flow against the live hub. It cannot do SMART Backend Services: the test mints its tokens."""

from __future__ import annotations

from collections.abc import Callable

from tests.clients._clinic_flow import Flow, RunJs, check


def test_fhirclient_js_clinic_flow(run_js: RunJs, flow_for: Callable[[str], Flow]) -> None:
    flow = flow_for("clientjs")
    result = run_js("fhirclient_js.mjs", flow.config())
    check(flow, result, patch=True, conditional=True)

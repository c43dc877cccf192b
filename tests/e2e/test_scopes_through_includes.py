"""Included resources pass the same scope and role checks as a direct search (issue 10, attack list)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.referrals._workflow_hub import Hub, ok, permit
from tests.support.clients import FhirClients


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _types(bundle: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in bundle.get("entry", []):
        out.setdefault(entry["search"]["mode"], set()).add(entry["resource"]["resourceType"])
    return out


def test_a_narrow_token_gets_no_other_type_through_include_or_revinclude(hub: Hub) -> None:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    request_id, _ = hub.referred(patient, hub.opt_in, supportingInfo=[{"reference": consent}])
    query = f"/fhir/ServiceRequest?_id={request_id}&_include=ServiceRequest:patient&_revinclude=Task:focus"
    wide = ok(hub.clinic.get(query))
    assert _types(wide) == {"match": {"ServiceRequest"}, "include": {"Patient", "Task"}}
    narrow = hub.fhir.client(
        "clinic", hub.clinic.organization_id, scopes="system/ServiceRequest.rs", client_id="narrow-clinic"
    )
    limited = ok(narrow.get(query))
    assert _types(limited) == {"match": {"ServiceRequest"}}
    assert narrow.get(f"/fhir/{patient}").status_code == 403  # as a direct read would be


def test_the_public_discovery_documents_and_nothing_else_allow_any_origin(hub: Hub) -> None:
    anonymous = hub.fhir.anonymous()
    for path in ("/fhir/metadata", "/fhir/.well-known/smart-configuration"):
        assert anonymous.get(path).headers.get("access-control-allow-origin") == "*"
    assert "access-control-allow-origin" not in hub.clinic.get("/fhir/Patient").headers
    capability = anonymous.get("/fhir/metadata").json()

    def empties(node: Any, path: str = "") -> list[str]:
        if isinstance(node, dict):
            found = [path] if not node else []
            return found + [p for k, v in node.items() for p in empties(v, f"{path}.{k}")]
        if isinstance(node, list):
            return ([path] if not node else []) + [
                p for i, v in enumerate(node) for p in empties(v, f"{path}[{i}]")
            ]
        return [path] if node == "" else []

    assert empties(capability) == []

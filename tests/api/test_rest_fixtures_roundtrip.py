"""Every FHIR R4 core example of a supported type is accepted and reads back identical
apart from ``id`` and ``meta`` (references between examples rewritten to the new ids).

Two routes, named honestly:
- types a client may create generically go through HTTP create, read and update;
- types the hub creates itself (Task, AuditEvent) or that carry referral business rules
  (ServiceRequest, Consent, QuestionnaireResponse) are checked at the structural-validation
  layer, stored through ``ResourceStore`` (as the hub's own server-side writes are) and
  read back over HTTP by a caller allowed to see them.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.rest import registry
from service.rest.validation import structural_issues
from service.search.extract import extract_index_rows
from service.storage import access
from service.storage.resources import ResourceStore
from tests.support.clients import Client, FhirClients

CORE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "fhir-r4-core"
EXAMPLES = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(CORE.glob("*.json"))}

# Created over HTTP, in an order that lets later examples point at earlier ones.
HTTP_ORDER = [
    ("Organization-hl7.json", "admin"),
    ("Endpoint-example.json", "admin"),
    ("HealthcareService-example.json", "admin"),
    ("Questionnaire-3141.json", "admin"),
    ("Questionnaire-f201.json", "admin"),
    ("Questionnaire-phq-9-questionnaire.json", "admin"),
    ("Patient-example.json", "clinic"),
]
STORE_ONLY = sorted(
    name
    for name, body in EXAMPLES.items()
    if body["resourceType"] in ("Task", "AuditEvent", "ServiceRequest", "Consent", "QuestionnaireResponse")
)
_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})((?:/_history/.*)?)$")


def _strip(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k != "id"}
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    """Point ``Type/oldId`` references at the ids the server assigned."""
    if isinstance(value, dict):
        out = {k: _rewrite(v, ids) for k, v in value.items()}
        ref = value.get("reference")
        match = _REF.match(ref) if isinstance(ref, str) else None
        if match and f"{match[1]}/{match[2]}" in ids:
            out["reference"] = ids[f"{match[1]}/{match[2]}"] + (match[3] or "")
        return out
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def test_every_supported_example_is_covered() -> None:
    supported = {n for n, b in EXAMPLES.items() if b["resourceType"] in registry.TYPES}
    assert supported == {n for n, _ in HTTP_ORDER} | set(STORE_ONLY)
    assert len(supported) >= 20


# Only the types Wraparound serves (Subscription, for one, is not among them).
SERVED = sorted(n for n, b in EXAMPLES.items() if b["resourceType"] in registry.TYPES)


@pytest.mark.parametrize("name", SERVED)
def test_example_is_structurally_valid_r4(name: str) -> None:
    assert structural_issues(copy.deepcopy(EXAMPLES[name])) == []


def test_http_create_read_update_roundtrip(fhir: FhirClients) -> None:
    clients: dict[str, Client] = {"admin": fhir.client("admin", "hub"), "clinic": fhir.client("clinic")}
    ids: dict[str, str] = {}
    created: dict[str, tuple[str, str]] = {}
    for name, role in HTTP_ORDER:
        client = clients[role]
        original = EXAMPLES[name]
        rtype = original["resourceType"]
        response = client.post(f"/fhir/{rtype}", json=original)
        assert response.status_code == 201, (name, response.text)
        new_id = response.json()["id"]
        assert new_id != original["id"]
        read = client.get(f"/fhir/{rtype}/{new_id}")
        assert read.status_code == 200, (name, read.text)
        assert _strip(read.json()) == _strip(original), name
        ids[f"{rtype}/{original['id']}"] = f"{rtype}/{new_id}"
        created[name] = (role, new_id)
    # Second pass: rewrite references between the examples and update each one.
    for name, (role, new_id) in created.items():
        client = clients[role]
        rewritten = _rewrite({**EXAMPLES[name], "id": new_id}, ids)
        rtype = rewritten["resourceType"]
        response = client.put(f"/fhir/{rtype}/{new_id}", json=rewritten)
        assert response.status_code == 200, (name, response.text)
        read = client.get(f"/fhir/{rtype}/{new_id}").json()
        assert read["meta"]["versionId"] == "2"
        assert _strip(read) == _strip(rewritten), name
    # The rewritten references are indexed: the examples find each other by search.
    admin = clients["admin"]
    org = ids["Organization/hl7"]
    found = admin.get("/fhir/Endpoint", params={"organization": org}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [ids["Endpoint/example"].split("/")[1]]
    by_endpoint = admin.get("/fhir/Organization", params={"endpoint": ids["Endpoint/example"]}).json()
    assert [e["resource"]["id"] for e in by_endpoint["entry"]] == [org.split("/")[1]]


def test_unsupported_example_type_is_refused(fhir: FhirClients) -> None:
    admin = fhir.client("admin", "hub")
    response = admin.post("/fhir/Subscription", json=EXAMPLES["Subscription-example.json"])
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_store_accepts_and_http_reads_back_server_created_and_rule_bound_types(fhir: FhirClients) -> None:
    clinic = fhir.client("clinic")
    admin = fhir.client("admin", "hub")
    patient = clinic.post("/fhir/Patient", json=EXAMPLES["Patient-example.json"]).json()
    ids = {"Patient/example": f"Patient/{patient['id']}"}
    stored: dict[str, tuple[str, str, dict[str, Any]]] = {}
    now = datetime.now(UTC)
    with fhir.db.transaction() as conn:
        store = ResourceStore(conn)
        for name in STORE_ONLY:
            body = _rewrite(copy.deepcopy(EXAMPLES[name]), ids)
            assert structural_issues(body) == [], name
            body.pop("id")
            saved = store.create(body["resourceType"], body, extract_index_rows(body), now=now)
            if body["resourceType"] != "AuditEvent":
                access.grant(conn, saved.rid, clinic.organization_id, "author")
            stored[name] = (body["resourceType"], saved.id, body)
    for name, (rtype, new_id, body) in stored.items():
        reader = admin if rtype == "AuditEvent" else clinic
        read = reader.get(f"/fhir/{rtype}/{new_id}")
        assert read.status_code == 200, (name, read.text)
        assert _strip(read.json()) == _strip(body), name
    # Index rows were written from the examples: searches by the rewritten patient find them.
    subject = ids["Patient/example"]
    requests = clinic.get("/fhir/ServiceRequest", params={"subject": subject}).json()
    expected = {
        i for n, (t, i, b) in stored.items() if t == "ServiceRequest" and b["subject"]["reference"] == subject
    }
    assert {e["resource"]["id"] for e in requests.get("entry", [])} == expected
    assert expected
    tasks = clinic.get("/fhir/Task", params={"patient": subject}).json()
    assert tasks["total"] == sum(
        1 for t, _, b in stored.values() if t == "Task" and b.get("for", {}).get("reference") == subject
    )
    assert tasks["total"] >= 1

"""Positive PHQ-4 screens raise a Flag for the submitting clinic, over HTTP with real tokens.

CONTRACT.md "What counts as consent": total >= 6 or a subscale >= 3 raises an active Flag on the
patient for the clinic (``Flag?patient=...&status=active``); partners never see it.
"""

from __future__ import annotations

from typing import Any

import pytest

import fhir_profiles as fp
from service.fhir.models import validate
from service.storage import access
from service.storage.resources import ResourceStore
from tests.referrals._workflow_hub import Hub, entries, ok
from tests.support.assessment import CANONICAL, coded
from tests.support.clients import Client, FhirClients

DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
T1, T2, T0 = "2026-11-20T10:00:00Z", "2026-11-27T10:00:00Z", "2026-11-13T10:00:00Z"


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _qr(patient: str, phq: tuple[int, int, int, int], author: str, *, authored: str = T1,
        canonical: str = CANONICAL, status: str = "completed") -> dict[str, Any]:  # fmt: skip
    items = [
        {"linkId": f"phq4-{n}", "answer": [coded(f"phq4-{n}", v)]}
        for n, v in zip((1, 2, 3, 4), phq, strict=True)
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": status,
        "subject": {"reference": patient},
        "author": {"reference": author},
        "authored": authored,
        "item": [{"linkId": "phq4", "item": items}],
    }


def _submit(clinic: Client, patient: str, phq: tuple[int, int, int, int], **kw: Any) -> dict[str, Any]:
    return ok(clinic.post("/fhir/QuestionnaireResponse", json=_qr(patient, phq, clinic.org_ref, **kw)), 201)


def _flags(client: Client, patient: str, status: str | None = None) -> list[dict[str, Any]]:
    query = f"/fhir/Flag?patient={patient}" + (f"&status={status}" if status else "")
    return entries(client.get(query))


def _details(flag: dict[str, Any]) -> list[str]:
    return [e["valueReference"]["reference"] for e in flag["extension"] if e["url"] == DETAIL]


@pytest.mark.parametrize(
    ("phq", "raised"),
    [
        ((2, 1, 2, 1), True),  # total 6 (and both subscales 3)
        ((3, 3, 3, 3), True),  # 12/12
        ((2, 1, 0, 0), True),  # GAD-2 subscale 3, total 3
        ((0, 0, 1, 2), True),  # PHQ-2 subscale 3, total 3
        # The most a negative screen can reach: with 0-3 items a total of 5 or 6 implies a subscale of 3.
        ((1, 1, 1, 1), False),  # total 4, subscales 2 / 2
        ((2, 0, 0, 2), False),  # subscales 2 / 2
        ((0, 0, 0, 0), False),
    ],
)
def test_flag_raised_only_for_a_positive_screen(
    hub: Hub, phq: tuple[int, int, int, int], raised: bool
) -> None:
    patient = hub.patient()
    _submit(hub.clinic, patient, phq)
    assert len(_flags(hub.clinic, patient, "active")) == int(raised)


def test_flag_content_links_the_response_and_its_scores(hub: Hub) -> None:
    patient = hub.patient()
    qr = _submit(hub.clinic, patient, (3, 3, 3, 3))
    (flag,) = _flags(hub.clinic, patient, "active")
    validate(flag)
    assert flag["status"] == "active"
    assert flag["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
        "code": "clinical",
        "display": "Clinical",
    }
    assert flag["code"]["coding"][0]["system"] == fp.FLAG_CODE_SYSTEM
    assert flag["code"]["text"] == "Positive PHQ-4 screen: follow up mental wellbeing"
    assert flag["subject"] == {"reference": patient}
    assert flag["author"] == {"reference": hub.clinic.org_ref}
    assert flag["period"]["start"]
    assert "end" not in flag["period"]
    details = _details(flag)
    assert details[0] == f"QuestionnaireResponse/{qr['id']}"
    scores = {hub.clinic.get(f"/fhir/{ref}").json()["code"]["coding"][0]["code"] for ref in details[1:]}
    assert scores == {"phq4-total", "phq4-anxiety", "phq4-depression"}
    # Read, and searched by date and _lastUpdated through the standard machinery.
    assert ok(hub.clinic.get(f"/fhir/Flag/{flag['id']}"))["id"] == flag["id"]
    for query in ("date=ge2026-01-01", f"_lastUpdated=le{flag['meta']['lastUpdated']}", "status=active"):
        found = entries(hub.clinic.get(f"/fhir/Flag?subject={patient}&{query}"))
        assert [f["id"] for f in found] == [flag["id"]], query
    assert entries(hub.clinic.get(f"/fhir/Flag?patient={patient}&status=inactive")) == []


def test_a_later_negative_response_inactivates_and_an_older_one_does_not(hub: Hub) -> None:
    patient = hub.patient()
    _submit(hub.clinic, patient, (2, 1, 0, 0), authored=T1)
    _submit(hub.clinic, patient, (0, 0, 0, 0), authored=T0)  # back-entered, older: the flag stays
    (flag,) = _flags(hub.clinic, patient, "active")
    _submit(hub.clinic, patient, (1, 0, 1, 0), authored=T2)
    assert _flags(hub.clinic, patient, "active") == []
    (closed,) = _flags(hub.clinic, patient, "inactive")
    assert closed["id"] == flag["id"]
    assert closed["period"]["start"] == flag["period"]["start"]
    assert closed["period"]["end"] >= closed["period"]["start"]
    # A response that does not answer the PHQ-4 says nothing: it clears nothing.
    _submit(hub.clinic, patient, (3, 3, 3, 3), authored=T2)
    body = _qr(patient, (0, 0, 0, 0), hub.clinic.org_ref, authored=T2)
    del body["item"]
    ok(hub.clinic.post("/fhir/QuestionnaireResponse", json=body), 201)
    assert len(_flags(hub.clinic, patient, "active")) == 1


def test_updating_the_response_re_evaluates_its_flag(hub: Hub) -> None:
    patient = hub.patient()
    qr = _submit(hub.clinic, patient, (3, 3, 0, 0))
    (flag,) = _flags(hub.clinic, patient, "active")
    # Still positive: the same Flag, pointing at the response's new score Observations.
    qr["item"] = _qr(patient, (0, 0, 3, 3), hub.clinic.org_ref)["item"]
    qr = ok(hub.clinic.put(f"/fhir/QuestionnaireResponse/{qr['id']}", json=qr))
    (same,) = _flags(hub.clinic, patient, "active")
    assert same["id"] == flag["id"]
    assert same["meta"]["versionId"] == "2"
    assert all(hub.clinic.get(f"/fhir/{ref}").status_code == 200 for ref in _details(same))
    # Negative now: its Flag is inactivated.
    qr["item"] = _qr(patient, (0, 0, 0, 0), hub.clinic.org_ref)["item"]
    qr = ok(hub.clinic.put(f"/fhir/QuestionnaireResponse/{qr['id']}", json=qr))
    assert _flags(hub.clinic, patient, "active") == []
    # Positive again: a new Flag; then deleting the response marks it entered-in-error.
    qr["item"] = _qr(patient, (3, 3, 3, 3), hub.clinic.org_ref)["item"]
    ok(hub.clinic.put(f"/fhir/QuestionnaireResponse/{qr['id']}", json=qr))
    (again,) = _flags(hub.clinic, patient, "active")
    assert again["id"] != flag["id"]
    assert hub.clinic.delete(f"/fhir/QuestionnaireResponse/{qr['id']}").status_code == 204
    assert [f["id"] for f in _flags(hub.clinic, patient, "entered-in-error")] == [again["id"]]


def test_flag_is_written_in_the_response_transaction(hub: Hub) -> None:
    patient = hub.patient()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
                "resource": _qr(patient, (3, 3, 3, 3), hub.clinic.org_ref),
            },
            {
                "request": {"method": "POST", "url": "ServiceRequest"},
                "resource": {"resourceType": "ServiceRequest"},
            },
        ],
    }
    assert hub.clinic.post("/fhir", json=bundle).status_code in (400, 422)
    assert _flags(hub.clinic, patient) == []  # rolled back with the response
    bundle["entry"] = bundle["entry"][:1]
    ok(hub.clinic.post("/fhir", json=bundle))
    assert len(_flags(hub.clinic, patient, "active")) == 1


def test_only_the_submitting_clinic_sees_the_flag(hub: Hub, fhir: FhirClients) -> None:
    patient = hub.patient()
    _submit(hub.clinic, patient, (3, 3, 3, 3))
    (flag,) = _flags(hub.clinic, patient, "active")
    # The partner holds a referral for the patient (it reads the Patient) but never the Flag.
    hub.referred(patient, hub.opt_out)
    assert hub.partner.get(f"/fhir/{patient}").status_code == 200
    assert hub.partner.get(f"/fhir/Flag/{flag['id']}").status_code == 403
    assert hub.partner.get(f"/fhir/Flag?patient={patient}").status_code == 403
    assert hub.partner.get(f"/fhir/Flag/{flag['id']}/_history").status_code == 403
    for query in (
        f"Patient?_id={patient.split('/')[1]}&_revinclude=Flag:patient",
        f"Patient?_id={patient.split('/')[1]}&_revinclude=Flag:subject",
        "ServiceRequest?_include=ServiceRequest:subject&_revinclude:iterate=Flag:patient",
    ):
        types = [
            e["resource"]["resourceType"] for e in ok(hub.partner.get(f"/fhir/{query}")).get("entry", [])
        ]
        assert types, query  # the partner's own matches come back ...
        assert "Flag" not in types, query  # ... never the clinic's Flag
    # The clinic asking the same finds it: the include path is real.
    revinclude = f"/fhir/Patient?_id={patient.split('/')[1]}&_revinclude=Flag:patient"
    assert "Flag" in [e["resource"]["resourceType"] for e in ok(hub.clinic.get(revinclude))["entry"]]
    # Another clinic and an admin: not found, and not readable at all.
    other = fhir.client("clinic")
    assert other.get(f"/fhir/Flag/{flag['id']}").status_code == 404
    assert _flags(other, patient) == []
    assert hub.admin.get(f"/fhir/Flag/{flag['id']}").status_code == 403
    # Exactly one grant: the clinic's, as author.
    with fhir.db.transaction() as conn:
        stored = ResourceStore(conn).current("Flag", flag["id"])
        assert stored is not None
        assert access.organizations_with_access(conn, stored.rid) == {hub.clinic.organization_id}


def test_clients_cannot_write_flags_and_the_capability_statement_says_so(hub: Hub, fhir: FhirClients) -> None:
    patient = hub.patient()
    _submit(hub.clinic, patient, (3, 3, 3, 3))
    (flag,) = _flags(hub.clinic, patient, "active")
    body = {k: v for k, v in flag.items() if k not in ("id", "meta")}
    assert hub.clinic.post("/fhir/Flag", json=body).status_code in (403, 405)
    assert hub.clinic.put(f"/fhir/Flag/{flag['id']}", json={**body, "id": flag["id"], "status": "inactive"}
                          ).status_code in (403, 405)  # fmt: skip
    assert hub.clinic.delete(f"/fhir/Flag/{flag['id']}").status_code in (403, 405)
    assert _flags(hub.clinic, patient, "active")[0]["meta"]["versionId"] == "1"
    statement = fhir.anonymous().get("/fhir/metadata").json()
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Flag"]
    interactions = {i["code"] for i in entry["interaction"]}
    assert {"read", "search-type"} <= interactions
    assert not interactions & {"create", "update", "delete", "patch"}
    assert {"patient", "status", "date", "subject", "_lastUpdated"} <= {
        p["name"] for p in entry["searchParam"]
    }


def test_responses_to_either_version_are_accepted_and_scored(hub: Hub) -> None:
    patient = hub.patient()
    old = f"{fp.ASSESSMENT_URL}|1.0.0"
    first = _submit(hub.clinic, patient, (3, 3, 3, 3), canonical=old)
    assert first["questionnaire"] == old
    assert len(_flags(hub.clinic, patient, "active")) == 1
    # A 1.0.0 response keeps validating in 1.0.0's PozQoL order; 1.1.0 follows the official order.
    domain_order = [f"pozqol-health-{n}" for n in (1, 2, 3)] + [f"pozqol-psych-{n}" for n in (1, 2, 3, 4)]
    body = _qr(patient, (0, 0, 0, 0), hub.clinic.org_ref, canonical=old, authored=T2)
    body["item"].append(
        {"linkId": "pozqol", "item": [{"linkId": k, "answer": [coded(k, 3)]} for k in domain_order]}
    )
    ok(hub.clinic.post("/fhir/QuestionnaireResponse", json=body), 201)
    assert _flags(hub.clinic, patient, "active") == []  # the later negative (1.0.0) clears the flag
    body["questionnaire"] = CANONICAL
    refused = hub.clinic.post("/fhir/QuestionnaireResponse", json=body)
    assert refused.status_code == 422
    assert "out of order" in refused.text

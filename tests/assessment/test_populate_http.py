"""SDC Questionnaire/$populate over HTTP with real tokens: previous answers, initial values, privacy."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import fhir_profiles as fp
from service.assessment._items import walk_items
from service.assessment.validate import validate_response
from service.storage import access
from service.storage.resources import ResourceStore
from tests.support.assessment import CANONICAL, QUESTIONNAIRE, coded
from tests.support.clients import Client, FhirClients

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
PREPOP = SHARED / "fixtures" / "hl7-sdc" / "questionnaire-sdc-test-fhirpath-prepop-initialexpr.json"
POPULATE = "/fhir/Questionnaire/$populate"


def _need(code: str, urgency: str) -> dict[str, Any]:
    lid = f"need-{code}"
    follow_ups = [
        {
            "linkId": f"{lid}-urgency",
            "answer": [{"valueCoding": {"system": fp.NEED_URGENCY_SYSTEM, "code": urgency}}],
        },
        {"linkId": f"{lid}-has-help", "answer": [{"valueBoolean": False}]},
        {"linkId": f"{lid}-wants-referral", "answer": [{"valueBoolean": True}]},
    ]
    return {"linkId": lid, "answer": [{"valueBoolean": True, "item": follow_ups}]}


def _response(patient: str, *, authored: str, needs: list[dict[str, Any]], status: str = "completed",
              questionnaire: str = CANONICAL) -> dict[str, Any]:  # fmt: skip
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": status,
        "subject": {"reference": patient},
        "authored": authored,
        "item": [
            {"linkId": "ons4", "item": [{"linkId": "ons4-happy", "answer": [{"valueInteger": 4}]}]},
            {
                "linkId": "phq4",
                "item": [{"linkId": f"phq4-{n}", "answer": [coded(f"phq4-{n}", 2)]} for n in range(1, 5)],
            },
            {"linkId": "needs", "item": needs},
            {
                "linkId": "peer-support",
                "item": [{"linkId": "peer-support-offered", "answer": [{"valueBoolean": False}]}],
            },
        ],
    }


def _created(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _patient(client: Client, **extra: Any) -> str:
    body = {
        "resourceType": "Patient",
        "name": [{"family": "Example", "given": ["Sam"]}],
        "identifier": [{"system": "https://clinic.example.org/Id/mrn", "value": "MRN-1"}],
        **extra,
    }
    return f"Patient/{_created(client, body)['id']}"


def _params(subject: str | None, **target: Any) -> dict[str, Any]:
    parameter = [{"name": name, **value} for name, value in target.items()]
    if subject is not None:
        parameter.append({"name": "subject", "valueReference": {"reference": subject}})
    parameter.append({"name": "local", "valueBoolean": True})
    return {"resourceType": "Parameters", "parameter": parameter}


def _populate(client: Client, subject: str, path: str = POPULATE, **target: Any) -> dict[str, Any]:
    target = target if target or path != POPULATE else {"canonical": {"valueUri": CANONICAL}}
    response = client.post(path, json=_params(subject, **target))
    assert response.status_code == 200, response.text
    parts = {p["name"]: p["resource"] for p in response.json()["parameter"]}
    assert set(parts) <= {"response", "issues"}
    return parts


def _answers(qr: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in walk_items(qr.get("item", [])):
        for answer in item.get("answer", []):
            out.setdefault(item["linkId"], []).append(
                next(v for k, v in answer.items() if k.startswith("value"))
            )
    return out


def _assert_valid(clinic: Client, qr: dict[str, Any], questionnaire: dict[str, Any]) -> None:
    assert qr["status"] == "in-progress"
    errors = [i for i in validate_response(qr, questionnaire) if i.severity == "error"]
    assert errors == []
    _created(clinic, qr)  # the hub's own write validation accepts it too


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    return fhir.client("clinic")


def test_needs_and_peer_support_come_from_the_latest_finished_response_but_scores_never(
    fhir: FhirClients, clinic: Client
) -> None:
    patient = _patient(clinic)
    _created(clinic, _response(patient, authored="2026-10-01T09:00:00Z", needs=[_need("food", "soon")]))
    latest = _created(clinic, _response(patient, authored="2026-11-20T10:00:00+01:00",
                                        needs=[_need("debt", "now"), _need("housing", "soon")]))  # fmt: skip
    # Later but unfinished: never a source.
    _created(clinic, _response(patient, authored="2026-11-21T10:00:00Z", needs=[_need("legal", "now")],
                               status="in-progress"))  # fmt: skip
    parts = _populate(clinic, patient)
    qr = parts["response"]
    assert "issues" not in parts
    assert qr["questionnaire"] == CANONICAL
    assert qr["subject"] == {"reference": patient}
    assert qr["author"] == {"reference": clinic.org_ref}
    assert qr["authored"].endswith("Z")
    assert "id" not in qr
    answers = _answers(qr)
    assert answers["need-debt"] == [True]
    assert answers["need-debt-urgency"] == [{"system": fp.NEED_URGENCY_SYSTEM, "code": "now"}]
    assert answers["need-housing-wants-referral"] == [True]
    assert "need-food" not in answers
    assert "need-legal" not in answers
    assert answers["peer-support-offered"] == [False]
    # ONS4 and PHQ-4 measure change over time: asked afresh, never copied.
    assert not {k for k in answers if k.startswith(("ons4", "phq4", "pozqol"))}
    assert [i["linkId"] for i in qr["item"]] == ["needs", "peer-support"]
    _assert_valid(clinic, qr, QUESTIONNAIRE)
    audit = fhir.client("admin", "hub").get(f"/fhir/AuditEvent?entity=QuestionnaireResponse/{latest['id']}")
    assert "operation" in [e["resource"]["subtype"][0]["code"] for e in audit.json().get("entry", [])]


def test_without_a_previous_response_only_initial_values_are_given(clinic: Client) -> None:
    patient = _patient(clinic)
    parts = _populate(clinic, patient, path="/fhir/Questionnaire/wellbeing-needs-assessment-1-1-0/$populate")
    qr = parts["response"]
    assert "item" not in qr  # the shipped form has no initial values
    assert qr["questionnaire"] == CANONICAL
    _assert_valid(clinic, qr, QUESTIONNAIRE)
    # The instance is a version: populating the 1.0.0 resource names 1.0.0.
    first = _populate(clinic, patient, path="/fhir/Questionnaire/wellbeing-needs-assessment/$populate")
    assert first["response"]["questionnaire"] == f"{fp.ASSESSMENT_URL}|1.0.0"


def test_another_clinics_responses_are_never_used(fhir: FhirClients, clinic: Client) -> None:
    patient = _patient(clinic)
    _created(clinic, _response(patient, authored="2026-11-20T10:00:00Z", needs=[_need("debt", "now")]))
    other = fhir.client("clinic")
    assert other.post(POPULATE, json=_params(patient, canonical={"valueUri": CANONICAL})).status_code == 404
    with fhir.db.transaction() as conn:  # the other clinic now sees the Patient, not the response
        stored = ResourceStore(conn).current("Patient", patient.split("/")[1])
        assert stored is not None
        access.grant(conn, stored.rid, other.organization_id, "author")
    qr = _populate(other, patient)["response"]
    assert "item" not in qr
    assert qr["author"] == {"reference": other.org_ref}
    assert _answers(_populate(clinic, patient)["response"])["need-debt"] == [True]


def test_answers_are_copied_into_a_new_version_only_where_the_item_still_exists(
    fhir: FhirClients, clinic: Client
) -> None:
    admin = fhir.client("admin", "hub")
    newer = copy.deepcopy(QUESTIONNAIRE)
    newer.update(id="wellbeing-needs-assessment-1-2", version="1.2.0")  # 1.1.0 is shipped
    needs = next(i for i in newer["item"] if i["linkId"] == "needs")
    needs["item"] = [i for i in needs["item"] if i["linkId"] != "need-housing"]
    _created(admin, newer)
    patient = _patient(clinic)
    _created(clinic, _response(patient, authored="2026-11-20T10:00:00Z",
                               needs=[_need("debt", "now"), _need("housing", "soon")]))  # fmt: skip
    # A bare canonical means the latest active version.
    qr = _populate(clinic, patient, canonical={"valueUri": fp.ASSESSMENT_URL})["response"]
    assert qr["questionnaire"] == f"{fp.ASSESSMENT_URL}|1.2.0"
    answers = _answers(qr)
    assert answers["need-debt"] == [True]
    assert not {k for k in answers if k.startswith("need-housing")}
    _assert_valid(clinic, qr, newer)


def test_initial_expressions_read_the_patient(fhir: FhirClients, clinic: Client) -> None:
    questionnaire = json.loads(PREPOP.read_text(encoding="utf-8"))
    questionnaire.update(url="https://example.org/Questionnaire/prepop", version="1")
    grp = questionnaire["item"][0]
    grp["item"].append({"linkId": "seen-before", "text": "Seen before?", "type": "boolean",
                        "initial": [{"valueBoolean": True}]})  # fmt: skip
    grp["item"].append({"linkId": "gender", "text": "Gender", "type": "choice", "extension": [
        {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
         "valueExpression": {"language": "text/fhirpath", "expression": "%subject.gender"}}],
        "answerOption": [{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": c}}
                         for c in ("female", "male", "other", "unknown")]})  # fmt: skip
    stored = _created(fhir.client("admin", "hub"), questionnaire)
    patient = _patient(
        clinic,
        name=[{"family": "Nguyen", "given": ["Lan", "Thi"]}],
        birthDate="1984-05-17",
        gender="female",
        identifier=[
            {"system": "http://ns.electronichealth.net.au/id/medicare-number", "value": "2950156481"}
        ],
        telecom=[{"system": "phone", "use": "mobile", "value": "07700 900123"}],
    )
    parts = _populate(
        clinic, patient, questionnaireRef={"valueReference": {"reference": f"Questionnaire/{stored['id']}"}}
    )
    qr = parts["response"]
    assert qr["questionnaire"] == "https://example.org/Questionnaire/prepop|1"
    answers = _answers(qr)
    assert answers["family-name"] == ["Nguyen"]
    assert answers["given-names"] == ["Lan"]
    assert answers["dob"] == ["1984-05-17"]
    assert answers["medicare-number"] == ["2950156481"]
    assert answers["contact-number"] == ["07700 900123"]
    assert answers["gender"] == [{"system": "http://hl7.org/fhir/administrative-gender", "code": "female"}]
    assert answers["seen-before"] == [True]
    assert len(answers["date-consult"]) == 1  # today()
    assert "dva-number" not in answers  # no such identifier: nothing to prefill, and no issue
    # %user is not a launch context the hub provides: those items are reported, not guessed.
    reported = {i["diagnostics"].split("'")[1] for i in parts["issues"]["issue"]}
    assert reported == {"provider-number", "provider-name"}
    assert {i["severity"] for i in parts["issues"]["issue"]} == {"warning"}
    _assert_valid(clinic, qr, questionnaire)


def test_wrong_values_are_dropped_and_reported(fhir: FhirClients, clinic: Client) -> None:
    questionnaire = {
        "resourceType": "Questionnaire", "url": "https://example.org/Questionnaire/odd", "version": "1",
        "status": "active", "subjectType": ["Patient"],
        "item": [
            {"linkId": "born", "type": "integer", "extension": [
                {"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression",
                 "valueExpression": {"language": "text/fhirpath", "expression": "%patient.birthDate"}}]},
            {"linkId": "age", "type": "integer", "initial": [{"valueInteger": 200}], "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 120}]},
            {"linkId": "note", "type": "string", "initial": [{"valueString": "kept"}]},
        ],
    }  # fmt: skip
    stored = _created(fhir.client("admin", "hub"), questionnaire)
    patient = _patient(clinic, birthDate="1990-01-01")
    parts = _populate(clinic, patient, path=f"/fhir/Questionnaire/{stored['id']}/$populate")
    assert _answers(parts["response"]) == {"note": ["kept"]}
    diagnostics = " ".join(i["diagnostics"] for i in parts["issues"]["issue"])
    assert "'born'" in diagnostics
    assert "'age'" in diagnostics
    _assert_valid(clinic, parts["response"], questionnaire)


def test_questionnaire_found_by_identifier(fhir: FhirClients, clinic: Client) -> None:
    questionnaire = json.loads(PREPOP.read_text(encoding="utf-8"))
    questionnaire.update(url="https://example.org/Questionnaire/prepop", version="2",
                         identifier=[{"system": "https://example.org/forms", "value": "prepop"}])  # fmt: skip
    _created(fhir.client("admin", "hub"), questionnaire)
    patient = _patient(clinic, name=[{"family": "Okafor"}])
    found = {"valueIdentifier": {"system": "https://example.org/forms", "value": "prepop"}}
    qr = _populate(clinic, patient, identifier=found)["response"]
    assert qr["questionnaire"] == "https://example.org/Questionnaire/prepop|2"
    assert _answers(qr)["family-name"] == ["Okafor"]
    unknown = _params(
        patient, identifier={"valueIdentifier": {"system": "https://example.org/forms", "value": "x"}}
    )
    assert clinic.post(POPULATE, json=unknown).status_code == 404


def test_refusals(fhir: FhirClients, clinic: Client) -> None:
    patient = _patient(clinic)
    target = {"canonical": {"valueUri": CANONICAL}}
    assert fhir.client("clinic").post(POPULATE, json=_params(patient, **target)).status_code == 404
    assert clinic.post(POPULATE, json=_params("Patient/no-such-patient", **target)).status_code == 404
    missing = clinic.post(POPULATE, json=_params(None, **target))
    assert missing.status_code == 400
    assert "subject" in missing.json()["issue"][0]["diagnostics"]
    assert clinic.post(POPULATE, json={"resourceType": "Patient"}).status_code == 400
    assert clinic.post(POPULATE).status_code == 400
    assert clinic.post(POPULATE, json=_params(patient)).status_code == 400  # no questionnaire named
    unknown = _params(patient, canonical={"valueUri": f"{fp.ASSESSMENT_URL}|9.9.9"})
    assert clinic.post(POPULATE, json=unknown).status_code == 404
    assert clinic.post("/fhir/Questionnaire/nope/$populate", json=_params(patient)).status_code == 404
    nameless = json.loads(PREPOP.read_text(encoding="utf-8"))  # no url/version: no response could cite it
    stored = _created(fhir.client("admin", "hub"), nameless)
    assert (
        clinic.post(f"/fhir/Questionnaire/{stored['id']}/$populate", json=_params(patient)).status_code == 422
    )
    inline = _params(patient, questionnaire={"resource": QUESTIONNAIRE})
    assert clinic.post(POPULATE, json=inline).status_code == 400
    group = clinic.post(POPULATE, json=_params("Group/g1", **target))
    assert group.status_code == 400
    assert fhir.client("partner").post(POPULATE, json=_params(patient, **target)).status_code == 403
    assert fhir.client("admin", "hub").post(POPULATE, json=_params(patient, **target)).status_code == 403


def test_capability_statement_lists_populate(fhir: FhirClients) -> None:
    statement = fhir.anonymous().get("/fhir/metadata").json()
    questionnaire = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Questionnaire")
    assert {
        "name": "populate",
        "definition": "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate",
    } in questionnaire["operation"]

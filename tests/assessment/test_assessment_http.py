"""The needs assessment over HTTP with real tokens: fetch, validate, score, suggest referrals."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import fhir_profiles as fp
from service.fhir.models import validate
from tests.support.assessment import CANONICAL, QUESTIONNAIRE, coded
from tests.support.clients import Client, FhirClients

SCORE = fp.ASSESSMENT_SCORE_SYSTEM
BAND = fp.ASSESSMENT_BAND_SYSTEM
CATEGORY = fp.SERVICE_CATEGORY_SYSTEM
POZQOL_IDS = [f"pozqol-health-{n}" for n in (1, 2, 3)] + [f"pozqol-psych-{n}" for n in (1, 2, 3, 4)]
POZQOL_IDS += [f"pozqol-social-{n}" for n in (1, 2, 3)] + [f"pozqol-functional-{n}" for n in (1, 2, 3)]
# Response items follow the Questionnaire's order (R4 QuestionnaireResponse: same order as the
# Questionnaire); since 1.1.0 PozQoL follows the official form, not the domain order above.
POZQOL_ORDER = [i["linkId"] for g in QUESTIONNAIRE["item"] if g["linkId"] == "pozqol" for i in g["item"]]


def _need(code: str, urgency: str, has_help: bool, wants: bool) -> dict[str, Any]:
    lid = f"need-{code}"
    return {
        "linkId": lid,
        "answer": [
            {
                "valueBoolean": True,
                "item": [
                    {
                        "linkId": f"{lid}-urgency",
                        "answer": [{"valueCoding": {"system": fp.NEED_URGENCY_SYSTEM, "code": urgency}}],
                    },
                    {"linkId": f"{lid}-has-help", "answer": [{"valueBoolean": has_help}]},
                    {"linkId": f"{lid}-wants-referral", "answer": [{"valueBoolean": wants}]},
                ],
            }
        ],
    }


def _response(patient: str, *, status: str = "completed", phq: tuple[int, int, int, int] = (2, 1, 1, 1),
              needs: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    ons = {"ons4-satisfied": 7, "ons4-worthwhile": 8, "ons4-happy": 5, "ons4-anxious": 2}
    pozqol = [2, 2, 2, 4, 4, 5, 5, 1, 1, 1, 3, 3, 3]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": status,
        "subject": {"reference": patient},
        "authored": "2026-11-20T10:00:00Z",
        "item": [
            {
                "linkId": "ons4",
                "item": [{"linkId": k, "answer": [{"valueInteger": v}]} for k, v in ons.items()],
            },
            {
                "linkId": "phq4",
                "item": [
                    {"linkId": f"phq4-{n}", "answer": [coded(f"phq4-{n}", v)]}
                    for n, v in zip((1, 2, 3, 4), phq, strict=True)
                ],
            },
            {
                "linkId": "pozqol",
                "item": [
                    {"linkId": k, "answer": [coded(k, dict(zip(POZQOL_IDS, pozqol, strict=True))[k])]}
                    for k in POZQOL_ORDER
                ],
            },
            {
                "linkId": "needs",
                "item": needs or [{"linkId": "need-debt", "answer": [{"valueBoolean": False}]}],
            },
        ],
    }


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    return fhir.client("clinic")


def _patient(client: Client) -> str:
    created = client.post(
        "/fhir/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "name": [{"family": "Example", "given": ["Sam"]}],
        },
    )
    assert created.status_code == 201, created.text
    return f"Patient/{created.json()['id']}"


def _create(client: Client, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post(f"/fhir/{body['resourceType']}", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def _entries(client: Client, query: str) -> list[dict[str, Any]]:
    response = client.get(query)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"]


def _scores(client: Client, qr_id: str) -> dict[str, dict[str, Any]]:
    found = _entries(client, f"/fhir/Observation?derived-from=QuestionnaireResponse/{qr_id}&_count=50")
    return {o["code"]["coding"][0]["code"]: o for o in found}


def _band(observation: dict[str, Any]) -> str:
    return str(next(c["code"] for c in observation["interpretation"][0]["coding"] if c["system"] == BAND))


def _expressions(outcome: dict[str, Any]) -> dict[str, str]:
    return {i["expression"][0]: i["code"] for i in outcome["issue"] if i["severity"] == "error"}


# -- the shipped Questionnaire ------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clinic", "partner", "admin"])
def test_shipped_questionnaire_is_fetchable_by_canonical_url(fhir: FhirClients, role: str) -> None:
    found = _entries(fhir.client(role), f"/fhir/Questionnaire?url={fp.ASSESSMENT_URL}")
    # Every published version stays fetchable: responses name url|version.
    assert sorted((q["id"], q["version"]) for q in found) == [
        ("wellbeing-needs-assessment", "1.0.0"),
        ("wellbeing-needs-assessment-1-1-0", "1.1.0"),
    ]
    latest = _entries(fhir.client(role), f"/fhir/Questionnaire?url={fp.ASSESSMENT_URL}&version=1.1.0")
    assert [q["id"] for q in latest] == ["wellbeing-needs-assessment-1-1-0"]


def test_capability_statement_lists_the_operation(fhir: FhirClients) -> None:
    statement = fhir.anonymous().get("/fhir/metadata").json()
    qr = next(r for r in statement["rest"][0]["resource"] if r["type"] == "QuestionnaireResponse")
    assert {
        "name": "suggest-referrals",
        "definition": "https://wraparound.org.uk/fhir/OperationDefinition/suggest-referrals",
    } in qr["operation"]


# -- scores -----------------------------------------------------------------------------------


def test_completed_response_is_scored_with_hand_computed_values(fhir: FhirClients, clinic: Client) -> None:
    patient = _patient(clinic)
    qr = _create(clinic, _response(patient))
    scores = _scores(clinic, qr["id"])
    # ONS4: reported separately with ONS bands (7 high, 8 high, 5 medium; anxiety 2 low).
    assert {k: (scores[k]["valueInteger"], _band(scores[k])) for k in
            ("ons4-satisfied", "ons4-worthwhile", "ons4-happy", "ons4-anxious")} == {
        "ons4-satisfied": (7, "ons4-high"), "ons4-worthwhile": (8, "ons4-high"),
        "ons4-happy": (5, "ons4-medium"), "ons4-anxious": (2, "ons4-anxiety-low")}  # fmt: skip
    # PHQ-4 2+1+1+1 = 5 (mild 3-5); GAD-2 2+1 = 3 positive; PHQ-2 1+1 = 2 negative.
    assert (scores["phq4-total"]["valueInteger"], _band(scores["phq4-total"])) == (5, "mild")
    assert (scores["phq4-anxiety"]["valueInteger"], _band(scores["phq4-anxiety"])) == (3, "positive-screen")
    assert (scores["phq4-depression"]["valueInteger"], _band(scores["phq4-depression"])) == (
        2,
        "negative-screen",
    )
    # PozQoL: health 2,2,2 reversed -> 4; psych 4,4,5,5 -> 4.5; social 1,1,1 reversed -> 5;
    # functional 3,3,3 reversed -> 3; overall (12 + 18 + 15 + 9) / 13 = 4.15.
    pozqol = {k: scores[k]["valueQuantity"]["value"] for k in scores if k.startswith("pozqol")}
    assert pozqol == {"pozqol-health-concerns": 4.0, "pozqol-psychological": 4.5, "pozqol-social": 5.0,
                      "pozqol-functional": 3.0, "pozqol-overall": 4.15}  # fmt: skip
    for observation in scores.values():
        assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr['id']}"}]
        assert observation["subject"] == {"reference": patient}
        assert observation["effectiveDateTime"] == "2026-11-20T10:00:00Z"
        validate(observation)
    by_code = _entries(clinic, f"/fhir/Observation?subject={patient}&code={SCORE}|phq4-total")
    assert [o["valueInteger"] for o in by_code] == [5]
    # Observations are as private as the response: another clinic sees neither.
    other = fhir.client("clinic")
    assert _entries(other, f"/fhir/Observation?derived-from=QuestionnaireResponse/{qr['id']}") == []
    assert other.get(f"/fhir/Observation/{scores['phq4-total']['id']}").status_code == 404
    # Clients cannot write Observations themselves.
    assert clinic.post("/fhir/Observation", json=scores["phq4-total"]).status_code in (403, 405)


def test_update_replaces_scores_and_unfinished_responses_have_none(clinic: Client) -> None:
    qr = _create(clinic, _response(_patient(clinic)))
    first = _scores(clinic, qr["id"])
    qr["item"][1] = _response("Patient/x", phq=(3, 3, 3, 3))["item"][1]
    updated = clinic.put(f"/fhir/QuestionnaireResponse/{qr['id']}", json=qr)
    assert updated.status_code == 200, updated.text
    second = _scores(clinic, qr["id"])
    assert set(second) == set(first)
    assert (second["phq4-total"]["valueInteger"], _band(second["phq4-total"])) == (12, "severe")
    assert clinic.get(f"/fhir/Observation/{first['phq4-total']['id']}").status_code == 410
    qr = updated.json()
    qr["status"] = "in-progress"
    assert clinic.put(f"/fhir/QuestionnaireResponse/{qr['id']}", json=qr).status_code == 200
    assert _scores(clinic, qr["id"]) == {}
    draft = _create(clinic, _response(_patient(clinic), status="in-progress"))
    assert _scores(clinic, draft["id"]) == {}


def test_deleting_a_response_deletes_its_scores(clinic: Client) -> None:
    qr = _create(clinic, _response(_patient(clinic)))
    assert _scores(clinic, qr["id"])
    assert clinic.delete(f"/fhir/QuestionnaireResponse/{qr['id']}").status_code == 204
    assert _scores(clinic, qr["id"]) == {}


# -- validation -------------------------------------------------------------------------------


def test_invalid_response_reports_every_issue_and_stores_nothing(clinic: Client) -> None:
    patient = _patient(clinic)
    body = _response(patient)
    body["item"][0]["item"][0]["answer"] = [{"valueString": "seven"}]  # ons4-satisfied is an integer
    body["item"][1]["item"][2]["answer"] = [
        {"valueCoding": {"system": "http://loinc.org", "code": "LA-nope"}}
    ]
    body["item"][3]["item"] = [
        {"linkId": "need-debt", "answer": [{"valueBoolean": False, "item": [
            {"linkId": "need-debt-urgency",
             "answer": [{"valueCoding": {"system": fp.NEED_URGENCY_SYSTEM, "code": "now"}}]}]}]},
        {"linkId": "need-nonsense", "answer": [{"valueBoolean": True}]},
    ]  # fmt: skip
    response = clinic.post("/fhir/QuestionnaireResponse", json=body)
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    found = _expressions(outcome)
    assert found == {
        "QuestionnaireResponse.item[0].item[0].answer[0]": "value",
        "QuestionnaireResponse.item[1].item[2].answer[0]": "value",
        "QuestionnaireResponse.item[3].item[0].answer[0].item[0]": "business-rule",
        "QuestionnaireResponse.item[3].item[1]": "structure",
    }
    diagnostics = " ".join(i["diagnostics"] for i in outcome["issue"])
    for link_id in ("ons4-satisfied", "phq4-3", "need-debt-urgency", "need-nonsense"):
        assert f"'{link_id}'" in diagnostics
    assert _entries(clinic, f"/fhir/QuestionnaireResponse?subject={patient}") == []
    assert _entries(clinic, f"/fhir/Observation?subject={patient}") == []


@pytest.mark.parametrize(
    "questionnaire",
    [
        f"{fp.ASSESSMENT_URL}|9.9.9",
        f"{fp.BASE}/Questionnaire/unknown",
        "Questionnaire/wellbeing-needs-assessment",
    ],
)
def test_unknown_or_non_canonical_questionnaire_is_refused(clinic: Client, questionnaire: str) -> None:
    body = _response(_patient(clinic))
    body["questionnaire"] = questionnaire
    response = clinic.post("/fhir/QuestionnaireResponse", json=body)
    assert response.status_code == 422, response.text
    assert [i["expression"] for i in response.json()["issue"]] == [["QuestionnaireResponse.questionnaire"]]


def test_missing_questionnaire_is_refused(clinic: Client) -> None:
    body = _response(_patient(clinic))
    del body["questionnaire"]
    response = clinic.post("/fhir/QuestionnaireResponse", json=body)
    assert response.status_code == 422
    assert response.json()["issue"][0]["code"] == "required"


def _custom_questionnaire(url: str, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "url": url,
        "version": version,
        "status": "active",
        "item": [
            {"linkId": "name", "type": "string", "required": True},
            {"linkId": "urgency", "type": "choice", "answerValueSet": f"{fp.BASE}/ValueSet/need-urgency"},
        ],
    }


def test_required_is_enforced_only_when_completed_and_local_value_sets_are_checked(
    fhir: FhirClients, clinic: Client
) -> None:
    url = f"{fp.BASE}/Questionnaire/test-required"
    _create(fhir.client("admin", "hub"), _custom_questionnaire(url))
    patient = _patient(clinic)

    def qr(status: str, urgency: str | None) -> dict[str, Any]:
        items = (
            []
            if urgency is None
            else [
                {
                    "linkId": "urgency",
                    "answer": [{"valueCoding": {"system": fp.NEED_URGENCY_SYSTEM, "code": urgency}}],
                }
            ]
        )
        return {"resourceType": "QuestionnaireResponse", "questionnaire": f"{url}|1.0.0", "status": status,
                "subject": {"reference": patient}, "item": items}  # fmt: skip

    _create(clinic, qr("in-progress", "now"))
    refused = clinic.post("/fhir/QuestionnaireResponse", json=qr("completed", "now"))
    assert refused.status_code == 422
    assert _expressions(refused.json()) == {"QuestionnaireResponse": "required"}
    bad_code = clinic.post("/fhir/QuestionnaireResponse", json=qr("in-progress", "yesterday"))
    assert bad_code.status_code == 422
    assert _expressions(bad_code.json()) == {"QuestionnaireResponse.item[0].answer[0]": "value"}
    complete = qr("completed", "soon")
    complete["item"].insert(0, {"linkId": "name", "answer": [{"valueString": "Sam"}]})
    _create(clinic, complete)


def test_new_version_does_not_break_responses_to_the_old_one(fhir: FhirClients, clinic: Client) -> None:
    admin = fhir.client("admin", "hub")
    v2 = copy.deepcopy(QUESTIONNAIRE)
    del v2["id"]
    v2["version"] = "2.0.0"
    v2["item"].append({"linkId": "consent-to-share", "type": "boolean", "required": True})
    created_v2 = _create(admin, v2)
    assert created_v2["id"] != "wellbeing-needs-assessment"
    patient = _patient(clinic)
    old = _create(clinic, _response(patient))
    assert _scores(clinic, old["id"])["phq4-total"]["valueInteger"] == 5
    for target in (f"{fp.ASSESSMENT_URL}|2.0.0", fp.ASSESSMENT_URL):  # bare url: the latest active version
        body = _response(patient)
        body["questionnaire"] = target
        refused = clinic.post("/fhir/QuestionnaireResponse", json=body)
        assert refused.status_code == 422, target
        assert _expressions(refused.json()) == {"QuestionnaireResponse": "required"}
    # The same url|version cannot be published twice, nor a published version's items changed in place.
    assert admin.post("/fhir/Questionnaire", json={**v2, "status": "draft"}).status_code == 422
    changed = {**created_v2, "item": created_v2["item"][:-1]}
    assert admin.put(f"/fhir/Questionnaire/{created_v2['id']}", json=changed).status_code == 422
    retired = {**created_v2, "status": "retired"}
    assert admin.put(f"/fhir/Questionnaire/{created_v2['id']}", json=retired).status_code == 200


def test_questionnaire_with_duplicate_link_ids_is_refused(fhir: FhirClients) -> None:
    body = _custom_questionnaire(f"{fp.BASE}/Questionnaire/dup")
    body["item"].append({"linkId": "name", "type": "string"})
    response = fhir.client("admin", "hub").post("/fhir/Questionnaire", json=body)
    assert response.status_code == 422
    assert _expressions(response.json()) == {"Questionnaire.item[2]": "invariant"}


# -- $suggest-referrals -----------------------------------------------------------------------


def _service(org: str, name: str, category: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "active": True,
        "name": name,
        "providedBy": {"reference": org},
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        **extra,
    }


@pytest.fixture
def directory(fhir: FhirClients) -> dict[str, str]:
    admin = fhir.client("admin", "hub")
    org = _create(admin, {"resourceType": "Organization", "name": "Partner (test)", "active": True})
    ref = f"Organization/{org['id']}"
    opt_out = [{"url": fp.CONSENT_MODEL_URL, "valueCode": "opt-out"}]
    housing = _create(admin, _service(ref, "Housing help", "housing", extension=opt_out,
                                      coverageArea=[{"display": "London"}]))  # fmt: skip
    benefits = _create(admin, _service(ref, "Benefits advice", "welfare-benefits-debt",
                                       eligibility=[{"comment": "Adults living with HIV"}]))  # fmt: skip
    food = _create(admin, _service(ref, "Food bank (closed)", "food", active=False))
    return {"org": ref, "housing": housing["id"], "benefits": benefits["id"], "food": food["id"]}


def _parts(parameter: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for part in parameter["part"]:
        key = next(k for k in part if k.startswith("value"))
        out[part["name"]] = part[key]
    return out


def _suggest(client: Client, qr_id: str, **kw: Any) -> dict[str, Any]:
    response = client.post(f"/fhir/QuestionnaireResponse/{qr_id}/$suggest-referrals", **kw)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    validate(result)
    return result


def _needs_qr(clinic: Client) -> dict[str, Any]:
    needs = [
        _need("debt", "soon", True, False),
        _need("housing", "now", False, True),
        _need("food", "now", False, True),
    ]
    return _create(clinic, _response(_patient(clinic), needs=needs))


def test_suggest_referrals_returns_needs_and_matching_active_services(
    fhir: FhirClients, clinic: Client, directory: dict[str, str]
) -> None:
    qr = _needs_qr(clinic)
    result = _suggest(clinic, qr["id"])
    needs = [_parts(p) for p in result["parameter"] if p["name"] == "need"]
    assert [n["code"]["code"] for n in needs] == ["debt", "housing", "food"]  # answer order
    assert needs[1]["code"]["system"] == fp.NEED_SYSTEM
    assert needs[1]["urgency"]["code"] == "now"
    assert (needs[0]["hasHelp"], needs[0]["wantsReferral"]) == (True, False)
    suggestions = [_parts(p) for p in result["parameter"] if p["name"] == "suggestion"]
    summary = [(s["need"]["code"], s["service"]["reference"], s["serviceCategory"]["code"], s["consentModel"],
                s["equivalence"]) for s in suggestions]  # fmt: skip
    assert summary == [
        ("debt", f"HealthcareService/{directory['benefits']}", "welfare-benefits-debt", "opt-in", "wider"),
        ("housing", f"HealthcareService/{directory['housing']}", "housing", "opt-out", "equivalent"),
    ]  # the inactive food service is never suggested
    assert suggestions[1]["service"]["display"] == "Housing help"
    assert suggestions[1]["organization"] == {"reference": directory["org"]}
    assert suggestions[0]["eligibility"] == "Adults living with HIV"
    audit = fhir.client("admin", "hub").get(f"/fhir/AuditEvent?entity=QuestionnaireResponse/{qr['id']}")
    actions = [e["resource"]["subtype"][0]["code"] for e in audit.json().get("entry", [])]
    assert "operation" in actions


def test_suggest_referrals_filters_by_coverage_area(clinic: Client, directory: dict[str, str]) -> None:
    qr = _needs_qr(clinic)

    def services(**kw: Any) -> list[str]:
        result = _suggest(clinic, qr["id"], **kw)
        return [_parts(p)["service"]["reference"].split("/")[1] for p in result["parameter"]
                if p["name"] == "suggestion"]  # fmt: skip

    # The benefits service declares no coverage area, so it is never filtered out.
    assert services(params={"area": "Manchester"}) == [directory["benefits"]]
    assert services(params={"area": "london"}) == [directory["benefits"], directory["housing"]]
    body = {"resourceType": "Parameters", "parameter": [{"name": "area", "valueString": "Leeds"}]}
    assert services(json=body) == [directory["benefits"]]
    wrong = clinic.post(
        f"/fhir/QuestionnaireResponse/{qr['id']}/$suggest-referrals", json={"resourceType": "Patient"}
    )
    assert wrong.status_code == 400


def test_suggest_referrals_is_private_to_those_who_can_see_the_response(
    fhir: FhirClients, clinic: Client, directory: dict[str, str]
) -> None:
    qr = _needs_qr(clinic)
    path = f"/fhir/QuestionnaireResponse/{qr['id']}/$suggest-referrals"
    assert fhir.client("clinic").post(path).status_code == 404
    assert fhir.client("partner").post(path).status_code == 404
    assert fhir.client("admin", "hub").post(path).status_code == 403
    assert clinic.post("/fhir/QuestionnaireResponse/no-such-id/$suggest-referrals").status_code == 404
    narrow = fhir.client("clinic", clinic.organization_id, scopes="system/Patient.rs",
                         client_id="narrow-scope-client")  # fmt: skip
    assert narrow.post(path).status_code == 403


def test_response_without_needs_gets_an_empty_parameters(clinic: Client, directory: dict[str, str]) -> None:
    qr = _create(clinic, _response(_patient(clinic)))
    assert _suggest(clinic, qr["id"]) == {"resourceType": "Parameters"}


def test_coverage_area_follows_locations_and_their_parents(fhir: FhirClients, clinic: Client) -> None:
    admin = fhir.client("admin", "hub")
    london = _create(admin, {"resourceType": "Location", "name": "London", "status": "active"})
    hackney = _create(
        admin,
        {"resourceType": "Location", "name": "Hackney", "partOf": {"reference": f"Location/{london['id']}"}},
    )
    org = _create(admin, {"resourceType": "Organization", "name": "Partner (test)"})
    area = [{"reference": f"Location/{london['id']}"}]
    housing = _create(admin, _service(f"Organization/{org['id']}", "Housing", "housing", coverageArea=area))
    qr = _needs_qr(clinic)

    def services(area: str) -> list[str]:
        result = _suggest(clinic, qr["id"], params={"area": area})
        return [
            _parts(p)["service"]["reference"]
            for p in result.get("parameter", [])
            if p["name"] == "suggestion"
        ]

    expected = [f"HealthcareService/{housing['id']}"]
    assert services(f"Location/{hackney['id']}") == expected  # Hackney is part of London
    assert services("London") == expected
    assert services("Leeds") == []
    assert services(f"Location/{london['id']}") == expected

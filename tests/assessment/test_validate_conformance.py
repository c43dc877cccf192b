"""validate_response against public Questionnaire/QuestionnaireResponse fixtures (see SOURCES.md files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.assessment.validate import validate_response
from service.errors import Issue

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def load(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / relative).read_text(encoding="utf-8"))
    return data


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]


# fhir-test-cases: the Java reference validator's expected OperationOutcome sits beside each pair.
# We assert the same count of errors at the same location, for the same reason (our wording and
# issue codes differ: see the expected_code column).
@pytest.mark.parametrize(
    ("case", "expected_code", "reason"),
    [
        ("choice-answer-option", "value", "http://example.org::c3 is not one of the allowed options"),
        ("group-required", "required", "required group has no answered items"),
        ("string-max-occurs", "structure", "the maximum number of answers is 2 but this has 3"),
    ],
)
def test_fhir_test_cases_refused_like_the_reference_validator(
    case: str, expected_code: str, reason: str
) -> None:
    expected = load(f"fhir-test-cases/R4.{case}-qr-base.json")["issue"]
    issues = validate_response(
        load(f"fhir-test-cases/{case}-qr.json"), load(f"fhir-test-cases/{case}-q.json")
    )

    found = errors(issues)
    assert len(found) == len(expected) == 1
    assert found[0].expression == tuple(expected[0]["expression"])
    assert found[0].code == expected_code
    assert reason in found[0].diagnostics
    assert "linkId '" in found[0].diagnostics


def test_lforms_repeating_group_over_max_occurs_is_refused() -> None:
    issues = validate_response(
        load("lhncbc-lforms/qr-with-repeating-group-exceed-maxOccurs.json"),
        load("lhncbc-lforms/q-with-minOccurs-maxOccurs.json"),
    )

    too_many = [i for i in issues if i.code == "structure"]
    assert len(too_many) == 1
    assert too_many[0].expression == ("QuestionnaireResponse.item[3]",)
    assert "maxOccurs is 3" in too_many[0].diagnostics
    # Each of the four group instances also leaves out the required "1.1" and "1.3".
    missing = sorted((i.expression[0], i.diagnostics.split("'")[1]) for i in issues if i.code == "required")
    assert missing == [
        (f"QuestionnaireResponse.item[{n}]", link_id) for n in range(4) for link_id in ("1.1", "1.3")
    ]
    assert len(issues) == 9


def test_lforms_items_under_repeating_choice_answers_pass() -> None:
    issues = validate_response(
        load("lhncbc-lforms/qr-items-under-repeating-choice-item.json"),
        load("lhncbc-lforms/q-items-under-repeating-choice-item.json"),
    )

    assert issues == []


def test_lforms_enable_when_reference_loop_terminates() -> None:
    questionnaire = load("lhncbc-lforms/q-enableWhen-with-reference-loop.json")
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [{"linkId": f"item{n}", "answer": [{"valueBoolean": False}]} for n in (1, 2, 3)],
    }

    assert validate_response(qr, questionnaire) == []


def test_sdc_phq9_response_passes_with_only_system_less_coding_warnings() -> None:
    # The QR's Codings omit the system of the contained #VSPHQ9; we match on code with a warning.
    issues = validate_response(
        load("hl7-sdc/questionnaireresponse-sdc-profile-example-PHQ9.json"),
        load("hl7-sdc/questionnaire-sdc-profile-example-PHQ9.json"),
    )

    assert errors(issues) == []
    assert len(issues) == 9
    assert all("has no system" in i.diagnostics for i in issues)


def test_sdc_phq9_wrong_code_is_refused_via_contained_value_set() -> None:
    qr = load("hl7-sdc/questionnaireresponse-sdc-profile-example-PHQ9.json")
    qr["item"][0]["item"][2]["answer"][0]["valueCoding"] = {
        "system": "http://hl7.org/fhir/uv/sdc/CodeSystem/CSPHQ9",
        "code": "Always",
    }

    found = errors(validate_response(qr, load("hl7-sdc/questionnaire-sdc-profile-example-PHQ9.json")))

    assert [(i.code, i.expression) for i in found] == [
        ("value", ("QuestionnaireResponse.item[0].item[2].answer[0]",))
    ]
    assert "linkId 'H1/T1/Q3'" in found[0].diagnostics


def test_smart_forms_grid_response_passes() -> None:
    issues = validate_response(
        load("aehrc-smart-forms/RTestGrid.json"), load("aehrc-smart-forms/QTestGrid.json")
    )

    assert issues == []


def test_smart_forms_bit_of_everything_loads_and_an_empty_response_is_valid() -> None:
    questionnaire = load("aehrc-smart-forms/QBitOfEverything.json")

    in_progress = validate_response(
        {"resourceType": "QuestionnaireResponse", "status": "in-progress"}, questionnaire
    )

    assert errors(in_progress) == []


def test_r4_core_3141_example_is_inconsistent_with_its_questionnaire() -> None:
    # The spec example answers 1.1 with a cancer.questionnaire.org "yesno" code, while 1.1.1's
    # enableWhen expects v2-0136 "Y": 1.1.1 is therefore disabled yet its questions are answered.
    # It also answers "1.1.1.3", which the Questionnaire does not define.
    issues = validate_response(
        load("fhir-r4-core/QuestionnaireResponse-3141.json"), load("fhir-r4-core/Questionnaire-3141.json")
    )

    base = "QuestionnaireResponse.item[0].item[0].answer[0].item[0]"
    assert sorted((i.code, i.expression[0]) for i in errors(issues)) == [
        ("business-rule", f"{base}.item[0]"),
        ("business-rule", f"{base}.item[1]"),
        ("structure", f"{base}.item[2]"),
    ]
    unchecked = [i for i in issues if i.severity == "warning"]
    assert len(unchecked) == 3
    assert all("yesnodontknow" in i.diagnostics for i in unchecked)


def test_r4_core_3141_codes_are_refused_when_the_value_set_is_known() -> None:
    yes_no_dont_know: set[tuple[str | None, str]] = {
        ("http://terminology.hl7.org/CodeSystem/v2-0136", "Y"),
        ("http://terminology.hl7.org/CodeSystem/v2-0136", "N"),
        ("http://terminology.hl7.org/CodeSystem/data-absent-reason", "asked-unknown"),
    }

    issues = validate_response(
        load("fhir-r4-core/QuestionnaireResponse-3141.json"),
        load("fhir-r4-core/Questionnaire-3141.json"),
        value_set_codes=lambda url: yes_no_dont_know if url.endswith("/yesnodontknow") else None,
    )

    bad_codes = [i for i in issues if i.code == "value"]
    group = "QuestionnaireResponse.item[0].item[0].answer[0].item[0]"
    assert [i.expression[0] for i in bad_codes] == [
        "QuestionnaireResponse.item[0].item[0].answer[0]",
        f"{group}.item[0].answer[0]",
        f"{group}.item[1].answer[0]",
    ]
    assert all(i.severity == "error" for i in bad_codes)
    assert all("not one of the allowed options" in i.diagnostics for i in bad_codes)


def test_r4_core_f201_example_is_inconsistent_with_its_questionnaire() -> None:
    # Q item "1" is a boolean question, but the example nests an undefined "1.1" directly under it,
    # and it answers the boolean questions 3.1 and 3.2 with strings.
    issues = validate_response(
        load("fhir-r4-core/QuestionnaireResponse-f201.json"), load("fhir-r4-core/Questionnaire-f201.json")
    )

    assert [(i.code, i.expression[0]) for i in issues] == [
        ("structure", "QuestionnaireResponse.item[0]"),
        ("value", "QuestionnaireResponse.item[2].item[0].answer[0]"),
        ("value", "QuestionnaireResponse.item[2].item[1].answer[0]"),
    ]
    assert "valueString does not match item type 'boolean'" in issues[1].diagnostics

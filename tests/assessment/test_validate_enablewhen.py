"""enableWhen / enableBehavior / enableWhenExpression, via the answers-on-disabled-item rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.assessment.validate import validate_response
from service.errors import Issue

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
LFORMS = json.loads((FIXTURES / "lhncbc-lforms" / "enableWhen-test.R4.json").read_text(encoding="utf-8"))
# The fixture writes Q8's repeats as the JSON string "true"; FHIR JSON needs a boolean.
_Q8 = next(i for g in LFORMS["item"] for i in g["item"] if i["linkId"] == "Q8")
assert _Q8["repeats"] == "true"
_Q8["repeats"] = True


def disabled(issues: list[Issue]) -> set[str]:
    return {
        i.diagnostics.split("'")[1] for i in issues if i.code == "business-rule" and i.severity == "error"
    }


def lforms_enabled(group: str, trigger: str, answers: list[dict[str, Any]], dependent: str) -> bool:
    items = [{"linkId": trigger, "answer": answers}] if answers else []
    items.append({"linkId": dependent, "answer": [{"valueString": "x"}]})
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [{"linkId": group, "item": items}],
    }
    issues = validate_response(qr, LFORMS)
    assert [i for i in issues if i.code != "business-rule"] == []
    return dependent not in disabled(issues)


def coding(code: str) -> dict[str, Any]:
    return {"valueCoding": {"system": "test-coding", "code": code, "display": code}}


@pytest.mark.parametrize(
    ("group", "trigger", "answers", "dependent", "enabled"),
    [
        ("g1", "Q1", [{"valueBoolean": True}], "Q1-exists", True),
        ("g1", "Q1", [], "Q1-exists", False),
        ("g1", "Q1", [], "Q1-not-exists", True),
        ("g1", "Q1", [{"valueBoolean": False}], "Q1-not-exists", False),
        ("g1", "Q1", [{"valueBoolean": True}], "Q1-true", True),
        ("g1", "Q1", [{"valueBoolean": False}], "Q1-true", False),
        ("g1", "Q1", [{"valueBoolean": False}], "Q1-false", True),
        ("g1", "Q1", [{"valueBoolean": True}], "Q1-not-true", False),
        ("g1", "Q1", [{"valueBoolean": False}], "Q1-not-true", True),
        ("g1", "Q1", [], "Q1-not-true", True),  # "!=": no answer equals true
        ("g2", "Q2", [{"valueDecimal": 5.6}], "Q2-equal", True),
        ("g2", "Q2", [{"valueDecimal": 5.7}], "Q2-equal", False),
        ("g2", "Q2", [{"valueDecimal": 4.8}], "Q2-ge", True),
        ("g2", "Q2", [{"valueDecimal": 4.7}], "Q2-ge", False),
        ("g2", "Q2", [{"valueDecimal": 1}], "Q2-exists", True),
        ("g3", "Q3", [{"valueInteger": 5}], "Q3-equal", True),
        ("g3", "Q3", [{"valueInteger": 4}], "Q3-ge", True),
        ("g3", "Q3", [{"valueInteger": 3}], "Q3-ge", False),
        ("g3", "Q3", [], "Q3-not-exists", True),
        ("g4", "Q4", [{"valueDate": "2020-05-01"}], "Q4-equal", True),
        ("g4", "Q4", [{"valueDate": "2020-05-02"}], "Q4-equal", False),
        ("g4", "Q4", [{"valueDate": "2021"}], "Q4-ge", True),
        ("g4", "Q4", [{"valueDate": "2020-04-30"}], "Q4-ge", False),
        ("g4", "Q4", [{"valueDate": "2020-05"}], "Q4-ge", False),  # uncertain at month precision
        ("g5", "Q5", [{"valueDateTime": "2020-05-01T10:00:00Z"}], "Q5-exists", True),
        ("g5", "Q5", [{"valueDateTime": "2020-05-01T10:00:00Z"}], "Q5-not-exists", False),
        ("g6", "Q6", [{"valueTime": "10:00:00"}], "Q6-exists", True),
        ("g6", "Q6", [], "Q6-exists", False),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-equals", True),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-notequals", False),
        ("g7", "Q7", [{"valueString": "other"}], "Q7-notequals", True),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-gt", True),
        ("g7", "Q7", [{"valueString": "tes"}], "Q7-gt", False),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-ge", True),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-ge2", True),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-lt", False),  # its operator is really ">"
        ("g7", "Q7", [{"valueString": "tesa"}], "Q7-le", True),
        ("g7", "Q7", [{"valueString": "test"}], "Q7-le", False),
        ("g7", "Q7", [{"valueString": "testing"}], "Q7-le2", True),
        ("g7", "Q7", [{"valueString": "testingz"}], "Q7-le2", False),
        ("g8", "Q8", [coding("B"), coding("C")], "Q8-eq-B", True),
        ("g8", "Q8", [coding("A")], "Q8-eq-B", False),
        ("g8", "Q8", [coding("B"), coding("C")], "Q8-eq-B-and-C", True),
        ("g8", "Q8", [coding("B")], "Q8-eq-B-and-C", False),
        ("g8", "Q8", [coding("A")], "Q8-exists", True),
        ("g9", "Q9", [coding("B")], "Q9-eq-B", True),
        ("g9", "Q9", [coding("B")], "Q9-noteq-B", False),
        ("g9", "Q9", [coding("C")], "Q9-noteq-B", True),
        ("g9", "Q9", [], "Q9-not-exists", True),
        ("g9a", "Q9a", [{"valueString": "B"}], "Q9a-eq-B", True),
        ("g9a", "Q9a", [{"valueString": "A"}], "Q9a-noteq-B", True),
        ("g9a", "Q9a", [{"valueString": "B"}], "Q9a-noteq-B", False),
        ("g9b", "Q9b", [{"valueInteger": 34}], "Q9b-eq-B", True),
        ("g9b", "Q9b", [{"valueInteger": 12}], "Q9b-eq-B", False),
        ("g9b", "Q9b", [{"valueInteger": 34}], "Q9b-noteq-B", False),
        # lforms writes these conditions as answerInteger holding a date/time string.
        ("g9c", "Q9c", [{"valueDate": "2022-09"}], "Q9c-eq-B", True),
        ("g9c", "Q9c", [{"valueDate": "2022"}], "Q9c-eq-B", False),
        ("g9c", "Q9c", [{"valueDate": "2022-09-20"}], "Q9c-noteq-B", True),
        ("g9d", "Q9d", [{"valueTime": "13:30:00"}], "Q9d-eq-B", True),
        ("g9d", "Q9d", [{"valueTime": "10:30:00"}], "Q9d-noteq-B", True),
        ("g9d", "Q9d", [{"valueTime": "13:30:00"}], "Q9d-noteq-B", False),
    ],
)
def test_lforms_enable_when_operators(
    group: str, trigger: str, answers: list[dict[str, Any]], dependent: str, enabled: bool
) -> None:
    assert lforms_enabled(group, trigger, answers, dependent) is enabled


@pytest.mark.parametrize(("q10", "q10b", "enabled"), [("chic", "ken", True), ("duck", "ling", False)])
def test_lforms_enable_when_expression(q10: str, q10b: str, enabled: bool) -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {
                "linkId": "g10",
                "item": [
                    {"linkId": "Q10", "answer": [{"valueString": q10}]},
                    {"linkId": "Q10b", "answer": [{"valueString": q10b}]},
                    {"linkId": "Q10-ewe", "answer": [{"valueString": "x"}]},
                ],
            }
        ],
    }

    issues = validate_response(qr, LFORMS)

    assert ("Q10-ewe" not in disabled(issues)) is enabled
    assert [i for i in issues if i.code != "business-rule"] == []


# --- small hand-written Questionnaires -------------------------------------------------------


def question(link_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"linkId": link_id, "type": kind, **extra}


def when(question_id: str, operator: str, **answer: Any) -> dict[str, Any]:
    return {"question": question_id, "operator": operator, **answer}


def response(*items: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": status, "item": list(items)}


def answered(link_id: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "answer": list(values)}


def enabled_with(
    trigger: dict[str, Any], trigger_answers: list[dict[str, Any]], condition: dict[str, Any]
) -> bool:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [trigger, question("dep", "string", enableWhen=[condition])],
    }
    qr = response(answered(trigger["linkId"], *trigger_answers), answered("dep", {"valueString": "x"}))
    issues = validate_response(qr, questionnaire)
    return "dep" not in disabled(issues)


QTY = {"system": "http://unitsofmeasure.org", "code": "kg", "unit": "kg"}


@pytest.mark.parametrize(
    ("trigger", "answers", "condition", "enabled"),
    [
        (
            question("t", "quantity"),
            [{"valueQuantity": {**QTY, "value": 80}}],
            when("t", ">", answerQuantity={**QTY, "value": 70}),
            True,
        ),
        (
            question("t", "quantity"),
            [{"valueQuantity": {**QTY, "value": 60}}],
            when("t", "<=", answerQuantity={**QTY, "value": 60}),
            True,
        ),
        (
            question("t", "quantity"),
            [{"valueQuantity": {**QTY, "value": 60}}],
            when("t", "<", answerQuantity={**QTY, "value": 60}),
            False,
        ),
        (
            question("t", "quantity"),
            [{"valueQuantity": {"system": "http://unitsofmeasure.org", "code": "g", "value": 90000}}],
            when("t", ">", answerQuantity={**QTY, "value": 70}),
            False,
        ),  # different units: not comparable
        (
            question("t", "reference"),
            [{"valueReference": {"reference": "Patient/1"}}],
            when("t", "=", answerReference={"reference": "Patient/1"}),
            True,
        ),
        (
            question("t", "reference"),
            [{"valueReference": {"reference": "Patient/2"}}],
            when("t", "!=", answerReference={"reference": "Patient/1"}),
            True,
        ),
        (
            question("t", "dateTime"),
            [{"valueDateTime": "2024-01-01T09:00:00+01:00"}],
            when("t", "=", answerDateTime="2024-01-01T08:00:00Z"),
            True,
        ),  # same instant, other zone
        (
            question("t", "dateTime"),
            [{"valueDateTime": "2024-01-01T09:00:00Z"}],
            when("t", ">", answerDateTime="2024-01-01T08:30:00Z"),
            True,
        ),
        (question("t", "time"), [{"valueTime": "08:00:00"}], when("t", "<", answerTime="09:00:00"), True),
        (question("t", "time"), [{"valueTime": "10:00:00"}], when("t", "<", answerTime="09:00:00"), False),
        (question("t", "decimal"), [{"valueDecimal": 2.5}], when("t", ">=", answerDecimal=2.5), True),
        (question("t", "integer"), [{"valueInteger": 2}], when("t", "<=", answerInteger=1), False),
        (
            question("t", "choice", answerOption=[{"valueCoding": {"system": "s", "code": "a"}}]),
            [{"valueCoding": {"system": "s", "code": "a"}}],
            when("t", "=", answerCoding={"system": "other", "code": "a"}),
            False,
        ),  # system must agree
        (question("t", "boolean"), [{"valueBoolean": True}], when("t", ">", answerBoolean=False), False),
    ],
)
def test_operators_across_answer_types(
    trigger: dict[str, Any], answers: list[dict[str, Any]], condition: dict[str, Any], enabled: bool
) -> None:
    assert enabled_with(trigger, answers, condition) is enabled


def two_conditions(behavior: str | None) -> dict[str, Any]:
    dep = question(
        "dep", "string", enableWhen=[when("a", "=", answerBoolean=True), when("b", "=", answerBoolean=True)]
    )
    if behavior is not None:
        dep["enableBehavior"] = behavior
    return {
        "resourceType": "Questionnaire",
        "item": [question("a", "boolean"), question("b", "boolean"), dep],
    }


@pytest.mark.parametrize(
    ("behavior", "b_value", "enabled"),
    [("any", False, True), ("all", False, False), (None, False, False), ("all", True, True)],
)
def test_enable_behavior(behavior: str | None, b_value: bool, enabled: bool) -> None:
    qr = response(
        answered("a", {"valueBoolean": True}),
        answered("b", {"valueBoolean": b_value}),
        answered("dep", {"valueString": "x"}),
    )

    assert ("dep" not in disabled(validate_response(qr, two_conditions(behavior)))) is enabled


def test_question_resolves_within_the_same_repeating_group_instance() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [
            question(
                "g",
                "group",
                repeats=True,
                item=[
                    question("smoker", "boolean"),
                    question("packs", "integer", enableWhen=[when("smoker", "=", answerBoolean=True)]),
                ],
            )
        ],
    }
    qr = response(
        {
            "linkId": "g",
            "item": [answered("smoker", {"valueBoolean": True}), answered("packs", {"valueInteger": 1})],
        },
        {
            "linkId": "g",
            "item": [answered("smoker", {"valueBoolean": False}), answered("packs", {"valueInteger": 2})],
        },
    )

    issues = validate_response(qr, questionnaire)

    assert [(i.code, i.expression) for i in issues] == [
        ("business-rule", ("QuestionnaireResponse.item[1].item[1]",))
    ]
    assert "linkId 'packs'" in issues[0].diagnostics


def test_item_under_an_answer_resolves_its_parent_question() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [
            question(
                "pain",
                "boolean",
                item=[question("where", "string", enableWhen=[when("pain", "=", answerBoolean=True)])],
            )
        ],
    }
    ok = response(
        {
            "linkId": "pain",
            "answer": [{"valueBoolean": True, "item": [answered("where", {"valueString": "leg"})]}],
        }
    )
    bad = response(
        {
            "linkId": "pain",
            "answer": [{"valueBoolean": False, "item": [answered("where", {"valueString": "leg"})]}],
        }
    )

    assert validate_response(ok, questionnaire) == []
    assert [i.expression for i in validate_response(bad, questionnaire)] == [
        ("QuestionnaireResponse.item[0].answer[0].item[0]",)
    ]


def test_disabled_group_disables_its_descendants_and_disabled_questions_count_as_unanswered() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [
            question("gate", "boolean"),
            question(
                "grp",
                "group",
                enableWhen=[when("gate", "=", answerBoolean=True)],
                item=[
                    question("inner", "boolean"),
                    question("deep", "group", item=[question("leaf", "string")]),
                ],
            ),
            question("after", "string", enableWhen=[when("inner", "exists", answerBoolean=True)]),
        ],
    }
    qr = response(
        answered("gate", {"valueBoolean": False}),
        {
            "linkId": "grp",
            "item": [
                answered("inner", {"valueBoolean": True}),
                {"linkId": "deep", "item": [answered("leaf", {"valueString": "x"})]},
            ],
        },
        answered("after", {"valueString": "y"}),
    )

    issues = validate_response(qr, questionnaire)

    assert disabled(issues) == {"inner", "leaf", "after"}
    assert all(i.code == "business-rule" for i in issues)


def test_disabled_required_items_are_not_required() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [
            question("gate", "boolean"),
            question("why", "string", required=True, enableWhen=[when("gate", "=", answerBoolean=True)]),
        ],
    }

    assert validate_response(response(answered("gate", {"valueBoolean": False})), questionnaire) == []
    issues = validate_response(response(answered("gate", {"valueBoolean": True})), questionnaire)
    assert [(i.code, i.expression) for i in issues] == [("required", ("QuestionnaireResponse",))]


EXPRESSION = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"


def with_expression(expression: str) -> dict[str, Any]:
    ext = [{"url": EXPRESSION, "valueExpression": {"language": "text/fhirpath", "expression": expression}}]
    return {
        "resourceType": "Questionnaire",
        "item": [question("a", "integer"), question("b", "string", extension=ext)],
    }


@pytest.mark.parametrize(
    ("expression", "enabled"),
    [
        ("%resource.item.where(linkId='a').answer.value > 3", True),
        ("%resource.item.where(linkId='a').answer.value > 9", False),
        ("%context.linkId = 'b'", True),
        ("%resource.item.where(linkId='nope').answer.value = 1", False),  # empty result: disabled
    ],
)
def test_enable_when_expression(expression: str, enabled: bool) -> None:
    qr = response(answered("a", {"valueInteger": 5}), answered("b", {"valueString": "x"}))

    issues = validate_response(qr, with_expression(expression))

    assert ("b" not in disabled(issues)) is enabled
    assert all(i.severity == "error" for i in issues)


def test_enable_when_expression_failure_warns_and_counts_as_enabled() -> None:
    qr = response(answered("a", {"valueInteger": 5}), answered("b", {"valueString": "x"}))

    issues = validate_response(qr, with_expression("%undefinedVariable.exists()"))

    assert [(i.severity, i.expression) for i in issues] == [("warning", ("QuestionnaireResponse.item[1]",))]
    assert "enableWhenExpression could not be evaluated" in issues[0].diagnostics


def test_enable_when_on_unknown_question_warns() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [question("dep", "string", enableWhen=[when("ghost", "exists", answerBoolean=False)])],
    }

    issues = validate_response(response(answered("dep", {"valueString": "x"})), questionnaire)

    assert [(i.severity, i.code) for i in issues] == [("warning", "business-rule")]
    assert "unknown question 'ghost'" in issues[0].diagnostics

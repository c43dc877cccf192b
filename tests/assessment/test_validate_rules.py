"""One test (or parameter set) per validation rule, on small hand-written Questionnaires."""

from __future__ import annotations

from typing import Any

import pytest

from service.assessment.validate import validate_response
from service.errors import Issue

EXT = "http://hl7.org/fhir/StructureDefinition/"


def q(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Questionnaire", "status": "active", "item": list(items), **extra}


def item(link_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"linkId": link_id, "type": kind, **extra}


def qr(*items: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": status, "item": list(items)}


def ans(link_id: str, *values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": list(values), **extra}


def ext(name: str, **value: Any) -> list[dict[str, Any]]:
    return [{"url": EXT + name, **value}]


def summary(issues: list[Issue]) -> list[tuple[str, str, str]]:
    return [(i.severity, i.code, i.expression[0]) for i in issues]


# --- tree structure ---------------------------------------------------------------------------

GROUPED = q(item("g", "group", item=[item("a", "string"), item("b", "string")]), item("c", "string"))


def test_a_matching_response_is_valid() -> None:
    response = qr({"linkId": "g", "item": [ans("a", {"valueString": "x"})]}, ans("c", {"valueString": "y"}))

    assert validate_response(response, GROUPED) == []


def test_unknown_linkid_is_a_structure_error() -> None:
    issues = validate_response(qr(ans("zz", {"valueString": "x"})), GROUPED)

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0]")]
    assert issues[0].diagnostics == "linkId 'zz': linkId is not defined in the Questionnaire"


def test_known_linkid_under_the_wrong_parent_is_a_structure_error() -> None:
    issues = validate_response(qr(ans("a", {"valueString": "x"})), GROUPED)

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0]")]
    assert "places it under 'g'" in issues[0].diagnostics


def test_item_without_linkid_is_a_structure_error() -> None:
    issues = validate_response(qr({"answer": [{"valueString": "x"}]}), GROUPED)

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0]")]


def test_items_out_of_questionnaire_order() -> None:
    response = qr(ans("c", {"valueString": "y"}), {"linkId": "g", "item": [ans("a", {"valueString": "x"})]})

    issues = validate_response(response, GROUPED)

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[1]")]
    assert "out of order" in issues[0].diagnostics


def test_non_repeating_item_twice_is_refused_but_a_repeating_group_may_repeat() -> None:
    questionnaire = q(item("g", "group", repeats=True, item=[item("a", "string")]), item("c", "string"))
    group = {"linkId": "g", "item": [ans("a", {"valueString": "x"})]}

    assert validate_response(qr(group, group, ans("c", {"valueString": "y"})), questionnaire) == []
    issues = validate_response(
        qr(group, ans("c", {"valueString": "1"}), ans("c", {"valueString": "2"})), questionnaire
    )
    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[2]")]
    assert "appears more than once" in issues[0].diagnostics


@pytest.mark.parametrize("kind", ["group", "display"])
def test_groups_and_display_items_carry_no_answers(kind: str) -> None:
    issues = validate_response(qr(ans("x", {"valueString": "v"})), q(item("x", kind)))

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0]")]
    assert f"a {kind} item cannot have answers" in issues[0].diagnostics


def test_question_children_belong_under_answer_item() -> None:
    questionnaire = q(item("p", "boolean", item=[item("c", "string")]))
    nested = {"valueBoolean": True, "item": [ans("c", {"valueString": "x"})]}

    assert validate_response(qr({"linkId": "p", "answer": [nested]}), questionnaire) == []
    issues = validate_response(qr({"linkId": "p", "item": [ans("c", {"valueString": "x"})]}), questionnaire)
    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0]")]


def test_qrs_1_item_beneath_both_item_and_answer() -> None:
    questionnaire = q(item("p", "boolean", item=[item("c", "string")]))
    both = {"linkId": "p", "answer": [{"valueBoolean": True}], "item": [ans("c", {"valueString": "x"})]}

    issues = validate_response(qr(both), questionnaire)

    assert summary(issues) == [("error", "invariant", "QuestionnaireResponse.item[0]")]
    assert "qrs-1" in issues[0].diagnostics


def test_group_child_under_an_answer_is_misplaced() -> None:
    questionnaire = q(item("g", "group", item=[item("a", "string")]), item("p", "boolean"))
    response = qr(
        {"linkId": "p", "answer": [{"valueBoolean": True, "item": [ans("a", {"valueString": "x"})]}]}
    )

    issues = validate_response(response, questionnaire)

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0].answer[0].item[0]")]


def test_text_mismatch_is_only_a_warning() -> None:
    questionnaire = q(item("a", "string", text="Name?"))

    issues = validate_response(qr(ans("a", {"valueString": "x"}, text="Surname?")), questionnaire)

    assert summary(issues) == [("warning", "structure", "QuestionnaireResponse.item[0]")]
    assert validate_response(qr(ans("a", {"valueString": "x"}, text="Name?")), questionnaire) == []


def test_que_2_duplicate_linkids_in_the_questionnaire() -> None:
    questionnaire = q(item("a", "string"), item("g", "group", item=[item("a", "string")]))

    issues = validate_response(qr(ans("a", {"valueString": "x"})), questionnaire)

    assert summary(issues) == [("error", "invariant", "Questionnaire.item[1].item[0]")]
    assert "que-2" in issues[0].diagnostics


# --- answer types -----------------------------------------------------------------------------

ATTACHMENT = {"contentType": "text/plain", "data": "aGk="}
QUANTITY = {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("boolean", {"valueBoolean": True}, {"valueString": "true"}),
        ("decimal", {"valueDecimal": 1.5}, {"valueInteger": 1}),
        ("integer", {"valueInteger": 3}, {"valueDecimal": 3.5}),
        ("date", {"valueDate": "2024-02"}, {"valueDateTime": "2024-02-01T10:00:00Z"}),
        ("dateTime", {"valueDateTime": "2024-02-01T10:00:00+01:00"}, {"valueDate": "2024-02-01"}),
        ("time", {"valueTime": "10:00:00"}, {"valueString": "10am"}),
        ("string", {"valueString": "x"}, {"valueCoding": {"code": "x"}}),
        ("text", {"valueString": "long\ntext"}, {"valueUri": "http://x"}),
        ("url", {"valueUri": "http://example.org"}, {"valueString": "http://example.org"}),
        ("choice", {"valueCoding": {"system": "s", "code": "c"}}, {"valueString": "c"}),
        ("open-choice", {"valueString": "free text"}, {"valueInteger": 1}),
        ("attachment", {"valueAttachment": ATTACHMENT}, {"valueString": "file"}),
        ("reference", {"valueReference": {"reference": "Patient/1"}}, {"valueString": "Patient/1"}),
        ("quantity", {"valueQuantity": QUANTITY}, {"valueDecimal": 70}),
    ],
)
def test_answer_value_type_must_match_item_type(kind: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    questionnaire = q(item("a", kind))

    assert validate_response(qr(ans("a", good)), questionnaire) == []
    issues = validate_response(qr(ans("a", bad)), questionnaire)
    assert summary(issues) == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]
    assert issues[0].diagnostics.startswith("linkId 'a': answer ")
    assert f"does not match item type '{kind}'" in issues[0].diagnostics


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("boolean", {"valueBoolean": "yes"}),
        ("integer", {"valueInteger": True}),
        ("date", {"valueDate": "01/02/2024"}),
        ("dateTime", {"valueDateTime": "2024-02-01T10:00:00"}),  # a time needs a zone
        ("time", {"valueTime": "25"}),
        ("string", {"valueString": ""}),
        ("choice", {"valueCoding": "c"}),
    ],
)
def test_malformed_primitive_values(kind: str, value: dict[str, Any]) -> None:
    issues = validate_response(qr(ans("a", value)), q(item("a", kind)))

    assert summary(issues) == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]


def test_answer_with_two_values() -> None:
    issues = validate_response(qr(ans("a", {"valueString": "x", "valueInteger": 1})), q(item("a", "string")))

    assert summary(issues) == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]


# --- answerOption and answerValueSet ----------------------------------------------------------


@pytest.mark.parametrize(
    ("option_key", "options", "good", "bad"),
    [
        (
            "valueCoding",
            [{"system": "s", "code": "a"}],
            {"system": "s", "code": "a"},
            {"system": "t", "code": "a"},
        ),
        ("valueInteger", [1, 2], 2, 3),
        ("valueDate", ["2024-01-01"], "2024-01-01", "2024-01-02"),
        ("valueTime", ["09:00:00"], "09:00:00", "10:00:00"),
        ("valueString", ["red", "blue"], "red", "green"),
        (
            "valueReference",
            [{"reference": "Organization/1"}],
            {"reference": "Organization/1"},
            {"reference": "X/2"},
        ),
    ],
)
def test_answer_option_membership(option_key: str, options: list[Any], good: Any, bad: Any) -> None:
    questionnaire = q(item("a", "choice", answerOption=[{option_key: o} for o in options]))

    assert validate_response(qr(ans("a", {option_key: good})), questionnaire) == []
    issues = validate_response(qr(ans("a", {option_key: bad})), questionnaire)
    assert summary(issues) == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]
    assert "not one of the allowed options" in issues[0].diagnostics


def test_choice_answered_with_another_type_than_its_options() -> None:
    questionnaire = q(item("a", "choice", answerOption=[{"valueInteger": 1}]))

    issues = validate_response(qr(ans("a", {"valueCoding": {"code": "1"}})), questionnaire)

    assert "expected valueInteger" in issues[0].diagnostics


def test_open_choice_allows_free_text_but_not_foreign_codings() -> None:
    questionnaire = q(item("a", "open-choice", answerOption=[{"valueCoding": {"system": "s", "code": "a"}}]))

    assert validate_response(qr(ans("a", {"valueString": "something else"})), questionnaire) == []
    issues = validate_response(qr(ans("a", {"valueCoding": {"system": "s", "code": "b"}})), questionnaire)
    assert summary(issues) == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]


VS = "http://example.org/ValueSet/colours"


def colours(url: str) -> set[tuple[str | None, str]] | None:
    return {("http://example.org/colour", "red")} if url == VS else None


def test_answer_value_set_membership_via_the_callback() -> None:
    questionnaire = q(item("a", "choice", answerValueSet=VS))
    red, blue = (
        {"system": "http://example.org/colour", "code": "red"},
        {"system": "http://example.org/colour", "code": "blue"},
    )

    assert validate_response(qr(ans("a", {"valueCoding": red})), questionnaire, value_set_codes=colours) == []
    issues = validate_response(qr(ans("a", {"valueCoding": blue})), questionnaire, value_set_codes=colours)
    assert summary(issues) == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]


def test_unknown_answer_value_set_warns_and_skips_membership() -> None:
    questionnaire = q(item("a", "choice", answerValueSet="http://example.org/ValueSet/unknown"))

    issues = validate_response(qr(ans("a", {"valueCoding": {"system": "x", "code": "y"}})), questionnaire)

    assert summary(issues) == [("warning", "value", "QuestionnaireResponse.item[0]")]
    assert "is not known" in issues[0].diagnostics


def test_contained_value_set_is_resolved_locally() -> None:
    contained = {
        "resourceType": "ValueSet",
        "id": "vs",
        "compose": {"include": [{"system": "http://example.org/colour", "concept": [{"code": "red"}]}]},
    }
    questionnaire = q(item("a", "choice", answerValueSet="#vs"), contained=[contained])

    good = {"valueCoding": {"system": "http://example.org/colour", "code": "red"}}
    assert validate_response(qr(ans("a", good)), questionnaire) == []
    bad = {"valueCoding": {"system": "http://example.org/colour", "code": "green"}}
    assert summary(validate_response(qr(ans("a", bad)), questionnaire))[0][:2] == ("error", "value")


# --- repeats and occurrences ------------------------------------------------------------------


def test_non_repeating_question_takes_one_answer() -> None:
    issues = validate_response(
        qr(ans("a", {"valueString": "1"}, {"valueString": "2"})), q(item("a", "string"))
    )

    assert summary(issues) == [("error", "structure", "QuestionnaireResponse.item[0]")]


def test_min_and_max_occurs_on_a_repeating_question() -> None:
    limits = ext("questionnaire-minOccurs", valueInteger=2) + ext("questionnaire-maxOccurs", valueInteger=3)
    questionnaire = q(item("a", "string", repeats=True, extension=limits))

    def answers(n: int, status: str = "completed") -> list[Issue]:
        return validate_response(
            qr(ans("a", *[{"valueString": str(i)} for i in range(n)]), status=status), questionnaire
        )

    assert answers(2) == answers(3) == []
    assert summary(answers(4)) == [("error", "structure", "QuestionnaireResponse.item[0]")]
    assert summary(answers(1)) == [("error", "required", "QuestionnaireResponse.item[0]")]
    assert answers(1, "in-progress") == []


def test_min_occurs_on_a_required_repeating_group() -> None:
    limits = ext("questionnaire-minOccurs", valueInteger=2)
    questionnaire = q(
        item("g", "group", repeats=True, required=True, extension=limits, item=[item("a", "string")])
    )
    group = {"linkId": "g", "item": [ans("a", {"valueString": "x"})]}

    assert validate_response(qr(group, group), questionnaire) == []
    issues = validate_response(qr(group), questionnaire)
    assert summary(issues) == [("error", "required", "QuestionnaireResponse.item[0]")]
    assert "minOccurs is 2" in issues[0].diagnostics
    absent = validate_response(qr(), questionnaire)
    assert [i.diagnostics for i in absent] == ["linkId 'g': required item is missing"]


# --- value constraints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "key", "low", "high", "inside", "below", "above"),
    [
        ("integer", "valueInteger", 1, 10, 5, 0, 11),
        ("decimal", "valueDecimal", 0.5, 1.5, 1.0, 0.1, 2.0),
        ("date", "valueDate", "2020-01-01", "2020-12-31", "2020-06-01", "2019-12-31", "2021-01-01"),
    ],
)
def test_min_value_and_max_value(
    kind: str, key: str, low: Any, high: Any, inside: Any, below: Any, above: Any
) -> None:
    bounds = ext("minValue", **{key: low}) + ext("maxValue", **{key: high})
    questionnaire = q(item("a", kind, extension=bounds))

    assert validate_response(qr(ans("a", {key: inside})), questionnaire) == []
    low_issue = validate_response(qr(ans("a", {key: below})), questionnaire)
    high_issue = validate_response(qr(ans("a", {key: above})), questionnaire)
    assert "below the minimum" in low_issue[0].diagnostics
    assert "above the maximum" in high_issue[0].diagnostics
    assert (
        summary(low_issue)
        == summary(high_issue)
        == [("error", "value", "QuestionnaireResponse.item[0].answer[0]")]
    )


def test_max_length_min_length_and_regex() -> None:
    rules = ext("minLength", valueInteger=2) + ext("regex", valueString="[A-Z]+")
    questionnaire = q(item("a", "string", maxLength=4, extension=rules))

    assert validate_response(qr(ans("a", {"valueString": "ABC"})), questionnaire) == []
    too_long = validate_response(qr(ans("a", {"valueString": "ABCDE"})), questionnaire)
    assert [i.diagnostics for i in too_long] == ["linkId 'a': answer is 5 characters, more than maxLength 4"]
    too_short = validate_response(qr(ans("a", {"valueString": "A"})), questionnaire)
    assert "fewer than minLength 2" in too_short[0].diagnostics
    off_pattern = validate_response(qr(ans("a", {"valueString": "abc"})), questionnaire)
    assert "does not match the pattern" in off_pattern[0].diagnostics


def test_invalid_regex_is_a_warning() -> None:
    questionnaire = q(item("a", "string", extension=ext("regex", valueString="[unclosed")))

    issues = validate_response(qr(ans("a", {"valueString": "x"})), questionnaire)

    assert summary(issues) == [("warning", "value", "QuestionnaireResponse.item[0].answer[0]")]


# --- required ---------------------------------------------------------------------------------

REQUIRED = q(
    item("a", "string", required=True), item("g", "group", required=True, item=[item("b", "string")])
)


@pytest.mark.parametrize("status", ["completed", "amended"])
def test_required_items_missing_from_a_finished_response(status: str) -> None:
    issues = validate_response(qr(status=status), REQUIRED)

    assert summary(issues) == [("error", "required", "QuestionnaireResponse")] * 2
    assert [i.diagnostics.split("'")[1] for i in issues] == ["a", "g"]


@pytest.mark.parametrize("status", ["in-progress", "stopped", "entered-in-error"])
def test_required_is_not_enforced_before_completion(status: str) -> None:
    assert validate_response(qr(status=status), REQUIRED) == []


def test_required_items_present_but_unanswered() -> None:
    response = qr({"linkId": "a", "answer": []}, {"linkId": "g", "item": [{"linkId": "b"}]})

    issues = validate_response(response, REQUIRED)

    assert summary(issues) == [
        ("error", "required", "QuestionnaireResponse.item[0]"),
        ("error", "required", "QuestionnaireResponse.item[1]"),
    ]


def test_required_child_of_an_optional_absent_group_is_not_required() -> None:
    questionnaire = q(item("g", "group", item=[item("b", "string", required=True)]))

    assert validate_response(qr(), questionnaire) == []
    issues = validate_response(qr({"linkId": "g", "item": []}), questionnaire)
    assert summary(issues) == [("error", "required", "QuestionnaireResponse.item[0]")]


def test_all_issues_are_reported_at_once() -> None:
    questionnaire = q(item("a", "integer", required=True), item("b", "boolean"), item("c", "string"))
    response = qr(ans("b", {"valueString": "no"}, {"valueBoolean": True}), ans("zz", {"valueString": "?"}))

    issues = validate_response(response, questionnaire)

    assert sorted(i.code for i in issues) == ["required", "structure", "structure", "value"]

"""Scores of the shipped assessment, checked against hand-computed values."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class  # noqa: TID251

import fhir_profiles as fp
from service.assessment.scoring import Score, compute_scores, score_observations
from tests.support.assessment import QUESTIONNAIRE, coded

POZQOL_IDS = [f"pozqol-health-{n}" for n in (1, 2, 3)] + [f"pozqol-psych-{n}" for n in (1, 2, 3, 4)]
POZQOL_IDS += [f"pozqol-social-{n}" for n in (1, 2, 3)] + [f"pozqol-functional-{n}" for n in (1, 2, 3)]


def _response(answers: dict[str, dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    """A response mirroring the Questionnaire's groups, with ``answers`` (linkId -> answer)."""

    def build(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if item["type"] == "group":
                children = build(item.get("item", []))
                if children:
                    out.append({"linkId": item["linkId"], "item": children})
            elif item["linkId"] in answers:
                out.append({"linkId": item["linkId"], "answer": [answers[item["linkId"]]]})
        return out

    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{fp.ASSESSMENT_URL}|{fp.ASSESSMENT_VERSION}",
        "status": status,
        "subject": {"reference": "Patient/p1"},
        "authored": "2026-11-20T10:00:00Z",
        "item": build(QUESTIONNAIRE["item"]),
    }


def _phq(a: int, b: int, c: int, d: int) -> dict[str, dict[str, Any]]:
    return {f"phq4-{n}": coded(f"phq4-{n}", v) for n, v in zip((1, 2, 3, 4), (a, b, c, d), strict=True)}


def _pozqol(values: list[int]) -> dict[str, dict[str, Any]]:
    return {link_id: coded(link_id, v) for link_id, v in zip(POZQOL_IDS, values, strict=True)}


def _by_code(scores: list[Score]) -> dict[str, Score]:
    return {s.code: s for s in scores}


@pytest.mark.parametrize(
    ("items", "total", "band"),
    [
        ((0, 0, 0, 0), 0, "normal"),
        ((1, 1, 0, 0), 2, "normal"),
        ((1, 1, 1, 0), 3, "mild"),
        ((2, 1, 1, 1), 5, "mild"),
        ((2, 2, 1, 1), 6, "moderate"),
        ((2, 2, 2, 2), 8, "moderate"),
        ((3, 2, 2, 2), 9, "severe"),
        ((3, 3, 3, 3), 12, "severe"),
    ],
)
def test_phq4_total_bands(items: tuple[int, int, int, int], total: int, band: str) -> None:
    scores = _by_code(compute_scores(_response(_phq(*items)), QUESTIONNAIRE))
    assert scores["phq4-total"].value == total
    assert scores["phq4-total"].band == band


@pytest.mark.parametrize(
    ("items", "anxiety", "depression"),
    [
        ((1, 1, 2, 0), ("negative-screen", 2), ("negative-screen", 2)),
        ((2, 1, 0, 3), ("positive-screen", 3), ("positive-screen", 3)),
        ((3, 3, 1, 1), ("positive-screen", 6), ("negative-screen", 2)),
        ((0, 2, 3, 3), ("negative-screen", 2), ("positive-screen", 6)),
    ],
)
def test_phq4_subscale_flags(
    items: tuple[int, int, int, int], anxiety: tuple[str, int], depression: tuple[str, int]
) -> None:
    scores = _by_code(compute_scores(_response(_phq(*items)), QUESTIONNAIRE))
    assert (scores["phq4-anxiety"].band, scores["phq4-anxiety"].value) == anxiety
    assert (scores["phq4-depression"].band, scores["phq4-depression"].value) == depression


def test_phq4_incomplete_gives_only_complete_subscales() -> None:
    answers = _phq(3, 3, 3, 3)
    del answers["phq4-4"]
    scores = _by_code(compute_scores(_response(answers), QUESTIONNAIRE))
    assert set(scores) == {"phq4-anxiety"}


def test_client_calculated_total_is_ignored() -> None:
    answers = _phq(1, 0, 0, 0) | {"phq4-total": {"valueInteger": 12}}
    assert _by_code(compute_scores(_response(answers), QUESTIONNAIRE))["phq4-total"].value == 1


@pytest.mark.parametrize(
    ("link_id", "value", "band"),
    [
        ("ons4-satisfied", 0, "ons4-low"),
        ("ons4-satisfied", 4, "ons4-low"),
        ("ons4-satisfied", 5, "ons4-medium"),
        ("ons4-worthwhile", 6, "ons4-medium"),
        ("ons4-worthwhile", 7, "ons4-high"),
        ("ons4-happy", 8, "ons4-high"),
        ("ons4-happy", 9, "ons4-very-high"),
        ("ons4-anxious", 1, "ons4-anxiety-very-low"),
        ("ons4-anxious", 2, "ons4-anxiety-low"),
        ("ons4-anxious", 5, "ons4-anxiety-medium"),
        ("ons4-anxious", 6, "ons4-anxiety-high"),
        ("ons4-anxious", 10, "ons4-anxiety-high"),
    ],
)
def test_ons4_reported_separately_with_bands(link_id: str, value: int, band: str) -> None:
    scores = compute_scores(_response({link_id: {"valueInteger": value}}), QUESTIONNAIRE)
    assert [(s.code, s.value, s.band) for s in scores] == [(link_id, value, band)]


def test_ons4_band_codes_are_unambiguous() -> None:
    # A low rating is poor wellbeing on three questions and good on anxiety: never the same code, and
    # every display says which way is better at the ends of the scale.
    concepts = {c["code"]: c for c in fp.load_by_url(fp.ASSESSMENT_BAND_SYSTEM)["concept"]}
    positive = compute_scores(_response({"ons4-happy": {"valueInteger": 0}}), QUESTIONNAIRE)[0]
    anxious = compute_scores(_response({"ons4-anxious": {"valueInteger": 0}}), QUESTIONNAIRE)[0]
    assert positive.band != anxious.band
    assert positive.band_display == concepts["ons4-low"]["display"]
    assert "poorer wellbeing" in concepts["ons4-low"]["display"]
    assert "better wellbeing" in concepts["ons4-anxiety-very-low"]["display"]
    assert "poorer wellbeing" in concepts["ons4-anxiety-high"]["display"]
    # The shared 1.0.0 codes stay defined (earlier Observations carry them) but are deprecated.
    for code in ("very-low", "low", "medium", "high", "very-high"):
        assert concepts[code]["property"] == [{"code": "status", "valueCode": "deprecated"}]


def test_ons4_out_of_range_is_not_scored() -> None:
    assert compute_scores(_response({"ons4-happy": {"valueInteger": 11}}), QUESTIONNAIRE) == []


def test_pozqol_reverse_scoring_domains_and_overall() -> None:
    # health 5,5,5 -> coded 1,1,1; psych 5,4,5,4 (kept); social 1,2,3 -> 5,4,3; functional 2,2,1 -> 4,4,5
    raw = [5, 5, 5, 5, 4, 5, 4, 1, 2, 3, 2, 2, 1]
    scores = _by_code(compute_scores(_response(_pozqol(raw)), QUESTIONNAIRE))
    assert scores["pozqol-health-concerns"].value == 1.0
    assert scores["pozqol-psychological"].value == 4.5
    assert scores["pozqol-social"].value == 4.0
    assert scores["pozqol-functional"].value == 4.33
    assert scores["pozqol-overall"].value == round((3 + 18 + 12 + 13) / 13, 2) == 3.54


def test_pozqol_missing_item_drops_its_domain_and_overall() -> None:
    answers = _pozqol([3] * 13)
    del answers["pozqol-social-2"]
    scores = _by_code(compute_scores(_response(answers), QUESTIONNAIRE))
    assert set(scores) == {"pozqol-health-concerns", "pozqol-psychological", "pozqol-functional"}
    assert all(s.value == 3.0 for s in scores.values())


def test_only_completed_responses_are_scored() -> None:
    answers = _phq(1, 1, 1, 1) | {"ons4-happy": {"valueInteger": 5}}
    assert compute_scores(_response(answers, status="in-progress"), QUESTIONNAIRE) == []
    assert len(compute_scores(_response(answers, status="amended"), QUESTIONNAIRE)) == 4


def test_ordinal_on_answer_option_is_read_too() -> None:
    # LHC-Forms style: the ordinalValue sits on the answerOption rather than on its valueCoding.
    options = [
        {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": w}],
         "valueCoding": {"system": "urn:test", "code": f"c{w}"}}
        for w in (0, 1, 2, 3)
    ]  # fmt: skip
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [{"linkId": f"phq4-{n}", "type": "choice", "answerOption": options} for n in (1, 2, 3, 4)],
    }
    qr = {
        "status": "completed",
        "item": [{"linkId": f"phq4-{n}", "answer": [{"valueCoding": {"system": "urn:test", "code": "c2"}}]}
                 for n in (1, 2, 3, 4)],
    }  # fmt: skip
    assert _by_code(compute_scores(qr, questionnaire))["phq4-total"].value == 8


def test_observations_shape() -> None:
    qr = _response(_phq(2, 1, 2, 2) | _pozqol([3] * 13) | {"ons4-anxious": {"valueInteger": 7}})
    qr["encounter"] = {"reference": "Encounter/e1"}
    scores = compute_scores(qr, QUESTIONNAIRE)
    observations = score_observations(qr, "QuestionnaireResponse/qr1", scores, "2026-11-21T09:00:00Z")
    assert len(observations) == len(scores) == 1 + 3 + 5
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    for obs in observations:
        get_fhir_model_class("Observation").model_validate(obs)
        assert obs["status"] == "final"
        assert obs["category"][0]["coding"][0]["code"] == "survey"
        assert obs["code"]["coding"][0]["system"] == fp.ASSESSMENT_SCORE_SYSTEM
        assert obs["subject"] == {"reference": "Patient/p1"}
        assert obs["encounter"] == {"reference": "Encounter/e1"}
        assert obs["effectiveDateTime"] == "2026-11-20T10:00:00Z"
        assert obs["issued"] == "2026-11-21T09:00:00Z"
        assert obs["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr1"}]
    total = by_code["phq4-total"]
    assert total["valueInteger"] == 7
    assert total["interpretation"][0]["coding"][0] == {
        "system": fp.ASSESSMENT_BAND_SYSTEM,
        "code": "moderate",
        "display": "Moderate",
    }
    depression = by_code["phq4-depression"]
    assert {"system": "http://loinc.org", "code": "55758-7"}.items() <= depression["code"]["coding"][
        1
    ].items()
    assert [c["code"] for c in depression["interpretation"][0]["coding"]] == ["positive-screen", "POS"]
    overall = by_code["pozqol-overall"]
    assert "interpretation" not in overall
    assert overall["valueQuantity"] == {
        "value": 3.0,
        "unit": "score",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert by_code["ons4-anxious"]["interpretation"][0]["coding"][0]["code"] == "ons4-anxiety-high"


def test_score_codes_are_in_the_score_code_system() -> None:
    codes = {c["code"] for c in fp.load_by_url(fp.ASSESSMENT_SCORE_SYSTEM)["concept"]}
    bands = {c["code"] for c in fp.load_by_url(fp.ASSESSMENT_BAND_SYSTEM)["concept"]}
    answers = _phq(3, 3, 0, 0) | _pozqol([2] * 13)
    answers |= {
        k: {"valueInteger": 5} for k in ("ons4-satisfied", "ons4-worthwhile", "ons4-happy", "ons4-anxious")
    }
    scores = compute_scores(_response(answers), QUESTIONNAIRE)
    assert {s.code for s in scores} == codes
    assert {s.band for s in scores if s.band} <= bands

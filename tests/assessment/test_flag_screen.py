"""The positive-screen rule on its own, and scoring of responses to either assessment version."""

from __future__ import annotations

from typing import Any

import pytest

import fhir_profiles as fp
from service.assessment.flags import screen
from service.assessment.scoring import Score, compute_scores
from tests.support.assessment import coded


def _scores(total: int | None, anxiety: int | None, depression: int | None) -> list[Score]:
    named = {"phq4-total": total, "phq4-anxiety": anxiety, "phq4-depression": depression}
    return [Score(code, code, value) for code, value in named.items() if value is not None]


@pytest.mark.parametrize(
    ("total", "anxiety", "depression", "expected"),
    [
        (6, 2, 2, True),  # total alone (the rule as written; with real items 6 implies a subscale of 3)
        (5, 2, 2, False),
        (3, 3, 0, True),  # GAD-2 subscale alone
        (3, 0, 3, True),  # PHQ-2 subscale alone
        (4, 2, 2, False),
        (0, 0, 0, False),
        (None, 3, None, True),  # half answered but already positive
        (None, 2, None, None),  # half answered and below: says nothing
        (None, None, None, None),
    ],
)
def test_screen(
    total: int | None, anxiety: int | None, depression: int | None, expected: bool | None
) -> None:
    assert screen(_scores(total, anxiety, depression)) is expected


def test_other_scores_do_not_count() -> None:
    assert screen([Score("ons4-anxious", "ons4-anxious", 10), *_scores(0, 0, 0)]) is False


@pytest.mark.parametrize("version", fp.ASSESSMENT_VERSIONS)
def test_scoring_works_for_every_version(version: str) -> None:
    questionnaire = fp.load_by_url(f"{fp.ASSESSMENT_URL}|{version}")
    items: list[dict[str, Any]] = [
        {"linkId": f"phq4-{n}", "answer": [coded(f"phq4-{n}", v)]}
        for n, v in zip((1, 2, 3, 4), (3, 2, 1, 0), strict=True)
    ]
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{fp.ASSESSMENT_URL}|{version}",
        "status": "completed",
        "item": [{"linkId": "phq4", "item": items}],
    }
    by_code = {s.code: s.value for s in compute_scores(response, questionnaire)}
    assert by_code == {"phq4-total": 6, "phq4-anxiety": 5, "phq4-depression": 1}
    assert screen(compute_scores(response, questionnaire)) is True

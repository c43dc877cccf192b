"""Scores of the wellbeing and needs assessment, and the Observations that record them.

Scores are always recomputed from the item answers: calculated items a form filler may have sent
(``phq4-total`` and friends, SDC calculatedExpression) are never trusted. Coded answers score by the
``ordinalValue`` extension of the Questionnaire's answer option (R4:
http://hl7.org/fhir/R4/extension-ordinalvalue.html); SDC's ``itemWeight`` is accepted as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_profiles import ASSESSMENT_BAND_SYSTEM, ASSESSMENT_SCORE_SYSTEM
from service.assessment._items import walk_items

_ORDINAL_URLS = (
    "http://hl7.org/fhir/StructureDefinition/ordinalValue",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
)
_SCORED_STATUSES = frozenset({"completed", "amended"})


@dataclass(frozen=True)
class Score:
    code: str  # a code of the assessment-score CodeSystem (the linkId it derives from, or a PozQoL domain)
    display: str
    value: int | float
    unit: str = "{score}"
    band: str | None = None  # a code of the assessment-band CodeSystem
    band_display: str | None = None


# ONS4 thresholds from the ONS personal well-being user guidance: (upper bound inclusive, band).
# A low rating is poor wellbeing on the three positively worded questions and good wellbeing on
# anxiety, so the two scales have their own band codes (assessment-band 1.1.0; the shared 1.0.0
# codes low/medium/... are deprecated) and every display says which way is better.
_ONS_POSITIVE = (
    (4, "ons4-low", "Low rating (0-4): poorer wellbeing"),
    (6, "ons4-medium", "Medium rating (5-6)"),
    (8, "ons4-high", "High rating (7-8)"),
    (10, "ons4-very-high", "Very high rating (9-10): better wellbeing"),
)
_ONS_ANXIETY = (
    (1, "ons4-anxiety-very-low", "Very low anxiety (0-1): better wellbeing"),
    (3, "ons4-anxiety-low", "Low anxiety (2-3)"),
    (5, "ons4-anxiety-medium", "Medium anxiety (4-5)"),
    (10, "ons4-anxiety-high", "High anxiety (6-10): poorer wellbeing"),
)
_ONS4 = {
    "ons4-satisfied": ("ONS4 life satisfaction (0-10)", _ONS_POSITIVE),
    "ons4-worthwhile": ("ONS4 worthwhile (0-10)", _ONS_POSITIVE),
    "ons4-happy": ("ONS4 happiness yesterday (0-10)", _ONS_POSITIVE),
    "ons4-anxious": ("ONS4 anxiety yesterday (0-10)", _ONS_ANXIETY),
}

# PHQ-4 (Kroenke et al. 2009): total bands, and each two-item subscale screens positive at 3 or more.
_PHQ4_ITEMS = ("phq4-1", "phq4-2", "phq4-3", "phq4-4")
_PHQ4_BANDS = (
    (2, "normal", "Normal"),
    (5, "mild", "Mild"),
    (8, "moderate", "Moderate"),
    (12, "severe", "Severe"),
)
_PHQ4_SUBSCALES = (
    ("phq4-anxiety", "PHQ-4 anxiety subscale (GAD-2) score (0-6)", ("phq4-1", "phq4-2")),
    ("phq4-depression", "PHQ-4 depression subscale (PHQ-2) score (0-6)", ("phq4-3", "phq4-4")),
)
_SUBSCALE_CUTOFF = 3

# PozQoL scoring table: linkId -> (domain, reverse-scored). Domains and item membership follow Brown et
# al., BMC Public Health 2018;18:527, Table 3; the PozQoL site (pozqol.org, "Calculating PozQoL scores")
# says only the four positively worded (psychological) items keep their response value and the others
# are coded 6 - response, so higher always means better quality of life. Domain score = mean of its
# coded items; overall = mean of all 13. THIS TABLE MUST BE CHECKED against the published PozQoL scoring
# guide before clinical or evaluation use. The published missing-data rule is not known here, so a
# domain is scored only when all its items are answered, and the overall score only when all 13 are.
_POZQOL_TABLE: dict[str, tuple[str, bool]] = {
    "pozqol-health-1": ("pozqol-health-concerns", True),
    "pozqol-health-2": ("pozqol-health-concerns", True),
    "pozqol-health-3": ("pozqol-health-concerns", True),
    "pozqol-psych-1": ("pozqol-psychological", False),
    "pozqol-psych-2": ("pozqol-psychological", False),
    "pozqol-psych-3": ("pozqol-psychological", False),
    "pozqol-psych-4": ("pozqol-psychological", False),
    "pozqol-social-1": ("pozqol-social", True),
    "pozqol-social-2": ("pozqol-social", True),
    "pozqol-social-3": ("pozqol-social", True),
    "pozqol-functional-1": ("pozqol-functional", True),
    "pozqol-functional-2": ("pozqol-functional", True),
    "pozqol-functional-3": ("pozqol-functional", True),
}
_POZQOL_DOMAINS = {
    "pozqol-health-concerns": "PozQoL health concerns domain (1-5)",
    "pozqol-psychological": "PozQoL psychological domain (1-5)",
    "pozqol-social": "PozQoL social domain (1-5)",
    "pozqol-functional": "PozQoL functional domain (1-5)",
}
_POZQOL_OVERALL = ("pozqol-overall", "PozQoL overall quality of life (1-5)")


def _ordinal(element: dict[str, Any]) -> float | None:
    for ext in element.get("extension", []):
        if ext.get("url") in _ORDINAL_URLS:
            for key in ("valueDecimal", "valueInteger"):
                if isinstance(ext.get(key), int | float) and not isinstance(ext.get(key), bool):
                    return float(ext[key])
    return None


def _option_ordinals(questionnaire: dict[str, Any]) -> dict[tuple[str, str | None, str | None], float]:
    out: dict[tuple[str, str | None, str | None], float] = {}
    for item in walk_items(questionnaire.get("item", [])):
        for option in item.get("answerOption", []):
            coding = option.get("valueCoding")
            if not isinstance(coding, dict):
                continue
            weight = _ordinal(coding)
            if weight is None:
                weight = _ordinal(option)
            if weight is not None:
                out[(item["linkId"], coding.get("system"), coding.get("code"))] = weight
    return out


def _numeric_answers(qr: dict[str, Any], questionnaire: dict[str, Any]) -> dict[str, float]:
    """linkId -> numeric value of its (first) answer, for integer, decimal and scored coded answers."""
    ordinals = _option_ordinals(questionnaire)
    values: dict[str, float] = {}
    for item in walk_items(qr.get("item", [])):
        link_id = item.get("linkId")
        answers = item.get("answer", [])
        if not isinstance(link_id, str) or not answers or link_id in values:
            continue
        answer = answers[0]
        value: float | None = None
        if "valueInteger" in answer:
            value = float(answer["valueInteger"])
        elif "valueDecimal" in answer:
            value = float(answer["valueDecimal"])
        elif isinstance(answer.get("valueCoding"), dict):
            coding = answer["valueCoding"]
            value = ordinals.get((link_id, coding.get("system"), coding.get("code")))
        if value is not None:
            values[link_id] = value
    return values


def _band(value: float, bands: tuple[tuple[int, str, str], ...]) -> tuple[str, str]:
    for upper, code, display in bands:
        if value <= upper:
            return code, display
    return bands[-1][1], bands[-1][2]


def _ons4_scores(values: dict[str, float]) -> list[Score]:
    scores = []
    for link_id, (display, bands) in _ONS4.items():
        value = values.get(link_id)
        if value is None or not 0 <= value <= 10 or value != int(value):
            continue
        band, band_display = _band(value, bands)
        scores.append(Score(link_id, display, int(value), band=band, band_display=band_display))
    return scores


def _phq4_scores(values: dict[str, float]) -> list[Score]:
    scores = []
    if all(link_id in values for link_id in _PHQ4_ITEMS):
        total = int(sum(values[link_id] for link_id in _PHQ4_ITEMS))
        band, band_display = _band(total, _PHQ4_BANDS)
        scores.append(
            Score("phq4-total", "PHQ-4 total score (0-12)", total, band=band, band_display=band_display)
        )
    for code, display, items in _PHQ4_SUBSCALES:
        if all(link_id in values for link_id in items):
            sub = int(sum(values[link_id] for link_id in items))
            positive = sub >= _SUBSCALE_CUTOFF
            scores.append(
                Score(
                    code,
                    display,
                    sub,
                    band="positive-screen" if positive else "negative-screen",
                    band_display="Positive screen" if positive else "Negative screen",
                )
            )
    return scores


def _pozqol_scores(values: dict[str, float]) -> list[Score]:
    coded: dict[str, float] = {}
    for link_id, (_, reverse) in _POZQOL_TABLE.items():
        raw = values.get(link_id)
        if raw is not None and 1 <= raw <= 5:
            coded[link_id] = 6 - raw if reverse else raw
    scores = []
    for domain, display in _POZQOL_DOMAINS.items():
        members = [link_id for link_id, (d, _) in _POZQOL_TABLE.items() if d == domain]
        if all(link_id in coded for link_id in members):
            scores.append(Score(domain, display, round(sum(coded[m] for m in members) / len(members), 2)))
    if len(coded) == len(_POZQOL_TABLE):
        code, display = _POZQOL_OVERALL
        scores.append(Score(code, display, round(sum(coded.values()) / len(coded), 2)))
    return scores


def compute_scores(qr: dict[str, Any], questionnaire: dict[str, Any]) -> list[Score]:
    """Scores of a completed response to the shipped assessment (any version: the linkIds are the same);
    sections left unanswered give none."""
    if qr.get("status") not in _SCORED_STATUSES:
        return []
    values = _numeric_answers(qr, questionnaire)
    return _ons4_scores(values) + _phq4_scores(values) + _pozqol_scores(values)


# Extra codings where a standard code is certain. The PHQ-4 depression subscale is the PHQ-2 (LOINC
# 55758-7). The PHQ-4 total and the anxiety subscale (GAD-2) carry no LOINC code: none was confirmed
# (70272-0 is given as the PHQ-4 total by one public source and as the GAD-2 total by another), and
# 69725-0 is the item "Feeling nervous, anxious or on edge", not a total (fhir_profiles/README.md).
_STANDARD_CODINGS: dict[str, list[dict[str, str]]] = {
    "phq4-depression": [
        {
            "system": "http://loinc.org",
            "code": "55758-7",
            "display": "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]",
        }
    ],
}
_V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_SCREEN_V3 = {"positive-screen": ("POS", "Positive"), "negative-screen": ("NEG", "Negative")}


def _interpretation(score: Score) -> list[dict[str, Any]]:
    if score.band is None:
        return []
    codings = [
        {"system": ASSESSMENT_BAND_SYSTEM, "code": score.band, "display": score.band_display or score.band}
    ]
    if score.band in _SCREEN_V3:
        code, display = _SCREEN_V3[score.band]
        codings.append({"system": _V3_INTERPRETATION, "code": code, "display": display})
    return [{"coding": codings, "text": score.band_display or score.band}]


def _value(score: Score) -> dict[str, Any]:
    if isinstance(score.value, int):
        return {"valueInteger": score.value}
    return {
        "valueQuantity": {
            "value": score.value,
            "unit": "score",
            "system": "http://unitsofmeasure.org",
            "code": score.unit,
        }
    }


def score_observations(
    qr: dict[str, Any], qr_ref: str, scores: list[Score], now: str
) -> list[dict[str, Any]]:
    """One survey Observation per score, derived from the response (``qr_ref``, e.g. QuestionnaireResponse/1).

    https://hl7.org/fhir/R4/observation.html — category ``survey``; effective time is when the
    response was authored, ``issued`` is ``now``.
    """
    observations = []
    for score in scores:
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                            "display": "Survey",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {"system": ASSESSMENT_SCORE_SYSTEM, "code": score.code, "display": score.display},
                    *_STANDARD_CODINGS.get(score.code, []),
                ],
                "text": score.display,
            },
        }
        if "subject" in qr:
            observation["subject"] = dict(qr["subject"])
        if "encounter" in qr:
            observation["encounter"] = dict(qr["encounter"])
        observation["effectiveDateTime"] = qr.get("authored", now)
        observation["issued"] = now
        observation.update(_value(score))
        interpretation = _interpretation(score)
        if interpretation:
            observation["interpretation"] = interpretation
        observation["derivedFrom"] = [{"reference": qr_ref}]
        observations.append(observation)
    return observations

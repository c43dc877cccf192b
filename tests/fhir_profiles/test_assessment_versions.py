"""The assessment's content corrections, published as version 1.1.0 beside the untouched 1.0.0."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fhir_profiles as fp

OLD = fp.load_by_url(f"{fp.ASSESSMENT_URL}|1.0.0")
NEW = fp.load_by_url(f"{fp.ASSESSMENT_URL}|1.1.0")
LOINC = "http://loinc.org"


def _walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk(item.get("item", []))


def _items(q: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["linkId"]: i for i in _walk(q["item"])}


def _loinc(item: dict[str, Any]) -> set[str]:
    return {c["code"] for c in item.get("code", []) if c["system"] == LOINC}


def test_both_versions_share_the_canonical_and_a_bare_url_is_the_latest() -> None:
    assert (OLD["id"], OLD["version"]) == ("wellbeing-needs-assessment", "1.0.0")
    assert (NEW["id"], NEW["version"]) == ("wellbeing-needs-assessment-1-1-0", "1.1.0")
    assert OLD["url"] == NEW["url"] == fp.ASSESSMENT_URL
    assert OLD["status"] == NEW["status"] == "active"
    assert fp.load_by_url(fp.ASSESSMENT_URL)["version"] == "1.1.0"


def test_link_ids_types_and_answer_options_are_identical() -> None:
    # Same linkIds (never renamed or reused), so scoring, minimisation and old responses keep working.
    old, new = _items(OLD), _items(NEW)
    assert set(old) == set(new)
    for link_id, item in old.items():
        assert new[link_id]["type"] == item["type"], link_id
        assert new[link_id].get("answerOption") == item.get("answerOption"), link_id
        assert new[link_id].get("answerValueSet") == item.get("answerValueSet"), link_id
        assert new[link_id].get("enableWhen") == item.get("enableWhen"), link_id
        assert new[link_id].get("required") == item.get("required"), link_id
    assert [g["linkId"] for g in NEW["item"]] == [g["linkId"] for g in OLD["item"]]


def test_pozqol_follows_the_official_order() -> None:
    # pozqol.org "Calculating PozQoL scores": the positively worded items are numbers 1, 5, 8 and 13.
    order = [i["linkId"] for i in _items(NEW)["pozqol"]["item"]]
    assert len(order) == 13
    assert [n for n, link_id in enumerate(order, 1) if link_id.startswith("pozqol-psych-")] == [1, 5, 8, 13]
    assert [i["linkId"] for i in _items(OLD)["pozqol"]["item"]][:4] == [
        "pozqol-health-1",
        "pozqol-health-2",
        "pozqol-health-3",
        "pozqol-psych-1",
    ]  # 1.0.0 is published: unchanged
    assert "NOT the validated wording" in _items(NEW)["pozqol"]["text"]


def test_ons4_carries_the_harmonised_preamble_and_the_anxiety_anchor() -> None:
    items = _items(NEW)
    assert items["ons4"]["text"].startswith(
        "Next I would like to ask you four questions about your feelings on aspects of your life. "
        "There are no right or wrong answers."
    )
    assert "where nought is 'not at all' and 10 is 'completely'" in items["ons4"]["text"]
    assert items["ons4-anxious"]["text"] == (
        "On a scale where nought is 'not at all anxious' and 10 is 'completely anxious', "
        "overall, how anxious did you feel yesterday?"
    )
    assert "Open Government Licence" in items["ons4"]["text"]


def test_loinc_codes_only_where_verified() -> None:
    items = _items(NEW)
    assert _loinc(items["phq4"]) == {"69724-3"}  # PHQ-4 panel
    assert _loinc(items["phq4-1"]) == {"69725-0"}  # the item "Feeling nervous, anxious or on edge"
    assert _loinc(items["phq4-2"]) == {"68509-9"}
    assert _loinc(items["phq4-3"]) == {"44250-9"}
    assert _loinc(items["phq4-4"]) == {"44255-8"}
    assert _loinc(items["phq4-depression"]) == {"55758-7"}  # PHQ-2 total
    # Not confirmed (README): no code on the PHQ-4 total or the GAD-2 subscale, and 69725-0 never there.
    assert _loinc(items["phq4-total"]) == _loinc(items["phq4-anxiety"]) == set()
    assert all("70272-0" not in _loinc(i) for i in items.values())
    # Instrument codes kept beside the LOINC panel code.
    assert {c["system"] for c in items["phq4"]["code"]} == {LOINC, fp.ASSESSMENT_INSTRUMENT_SYSTEM}


def test_flag_code_and_status_search_parameter_are_shipped() -> None:
    code_system = fp.load_by_url(fp.FLAG_CODE_SYSTEM)
    assert [(c["code"], c["display"]) for c in code_system["concept"]] == [
        ("phq4-positive-screen", "Positive PHQ-4 screen: follow up mental wellbeing")
    ]
    parameter = fp.load_by_url(f"{fp.BASE}/SearchParameter/Flag-status")
    assert (parameter["code"], parameter["base"], parameter["type"], parameter["expression"]) == (
        "status",
        ["Flag"],
        "token",
        "Flag.status",
    )

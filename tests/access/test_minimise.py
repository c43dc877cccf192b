"""Minimisation per partner (issue 9): the policy, the view, and whose grants decide it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import fhir_profiles as fp
from service.access.caller import Caller
from service.access.minimise import (
    Allowance,
    allowances,
    caller_views,
    organization_views,
    policy,
    redact,
)
from service.assessment._items import walk_items
from service.search.extract import extract_index_rows
from service.storage import access
from service.storage.database import Database
from service.storage.resources import ResourceStore, Stored

RAW = fp.load_minimisation_policy()
QUESTIONNAIRE = fp.load_by_url(fp.ASSESSMENT_URL)
LINK_IDS = {i["linkId"] for i in walk_items(QUESTIONNAIRE["item"])}
CATEGORIES = {c["code"] for c in fp.load_by_url(fp.SERVICE_CATEGORY_SYSTEM)["concept"]}
LABEL = policy().label
SENSITIVE = ("pozqol", "need-alcohol-drugs-chemsex", "need-sexual-health")


def _under(link_id: str) -> set[str]:
    """The linkId and every linkId nested under it in the Questionnaire."""
    item = next(i for i in walk_items(QUESTIONNAIRE["item"]) if i["linkId"] == link_id)
    return {i["linkId"] for i in walk_items([item])}


def _seen(allowed: Allowance) -> set[str]:
    out = set(allowed.answer_only)
    for link_id in allowed.items:
        out |= _under(link_id)
    return out


# -- the policy ----------------------------------------------------------------------------------------


def test_policy_names_only_real_link_ids_and_categories() -> None:
    rules = [*RAW["rule"], RAW["default"], RAW["withheld"]]
    for rule in rules:
        assert set(rule.get("item", ())) | set(rule.get("answerOnly", ())) <= LINK_IDS
    assert {r["category"] for r in RAW["rule"]} == CATEGORIES  # every category decided, none invented
    assert RAW["categorySystem"] == fp.SERVICE_CATEGORY_SYSTEM
    assert RAW["questionnaire"] == fp.ASSESSMENT_URL  # unversioned: keyed on linkIds, any version
    assert RAW["url"] == fp.MINIMISATION_POLICY_URL
    assert "minimisation-policy" not in {r.get("id") for r in fp.load_conformance()}


def test_every_published_questionnaire_version_has_the_policy_link_ids() -> None:
    for version in getattr(fp, "ASSESSMENT_VERSIONS", (fp.ASSESSMENT_VERSION,)):
        questionnaire = fp.load_by_url(f"{fp.ASSESSMENT_URL}|{version}")
        assert _seen(policy().default) <= {i["linkId"] for i in walk_items(questionnaire["item"])}


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_sensitive_modules_stay_with_the_clinic_unless_the_category_meets_the_need(category: str) -> None:
    seen = _seen(policy().allowance([category]))
    assert not seen & _under("pozqol")
    assert ("need-alcohol-drugs-chemsex" in seen) == (category == "alcohol-drugs-chemsex")
    assert ("need-sexual-health" in seen) == (category == "sexual-health")
    assert (_under("phq4") <= seen) == (category in ("peer-support", "mental-wellbeing"))
    assert not (seen & _under("phq4")) or _under("phq4") <= seen  # a module is shown whole or not at all


def test_housing_sees_its_need_and_follow_ups_only() -> None:
    seen = _seen(policy().allowance(["housing"]))
    assert seen == {
        "need-housing",
        "need-housing-urgency",
        "need-housing-has-help",
        "need-housing-wants-referral",
    }


def test_peer_support_and_mental_wellbeing_see_ons4_and_phq4() -> None:
    for category in ("peer-support", "mental-wellbeing"):
        seen = _seen(policy().allowance([category]))
        assert _under("ons4") | _under("phq4") <= seen


def test_default_is_the_peer_support_offer_and_social_need_headers() -> None:
    default = policy().default
    assert default.items == {"peer-support"}
    assert "need-housing" in default.answer_only
    assert not default.answer_only & {"need-mental-wellbeing", *SENSITIVE}
    assert not any(i.endswith(("-urgency", "-has-help", "-wants-referral")) for i in default.answer_only)


def test_unknown_or_missing_category_falls_back_to_default_and_services_unite() -> None:
    p = policy()
    assert p.allowance(["no-such-category"]) == p.default
    assert p.allowance([None]) == p.default
    assert p.allowance([]) == Allowance()
    both = p.allowance(["housing", "food"])
    assert {"need-housing", "need-food"} <= both.items


# -- the view --------------------------------------------------------------------------------------------


def _response() -> dict[str, Any]:
    def need(code: str, value: bool) -> dict[str, Any]:
        follow = [
            {"linkId": f"need-{code}-urgency", "answer": [{"valueCoding": {"code": "soon"}}]},
            {"linkId": f"need-{code}-wants-referral", "answer": [{"valueBoolean": True}]},
        ]
        return {"linkId": f"need-{code}", "answer": [{"valueBoolean": value, "item": follow}]}

    return {
        "resourceType": "QuestionnaireResponse",
        "id": "qr1",
        "meta": {"versionId": "3", "lastUpdated": "2026-12-01T10:00:00Z", "tag": [{"code": "x"}]},
        "text": {"status": "generated", "div": "<div>every answer</div>"},
        "status": "completed",
        "item": [
            {"linkId": "ons4", "item": [{"linkId": "ons4-happy", "answer": [{"valueInteger": 5}]}]},
            {"linkId": "phq4", "item": [{"linkId": "phq4-1", "answer": [{"valueCoding": {"code": "a"}}]}]},
            {"linkId": "pozqol", "item": [{"linkId": "pozqol-psych-1", "answer": [{"valueInteger": 2}]}]},
            {
                "linkId": "needs",
                "text": "Needs",
                "item": [need("housing", True), need("alcohol-drugs-chemsex", True)],
            },
            {
                "linkId": "peer-support",
                "item": [{"linkId": "peer-support-offered", "answer": [{"valueBoolean": True}]}],
            },
        ],
    }


def _link_ids(resource: Any) -> set[str]:
    if isinstance(resource, dict):
        found = {resource["linkId"]} if isinstance(resource.get("linkId"), str) else set()
        for value in resource.values():
            found |= _link_ids(value)
        return found
    if isinstance(resource, list):
        return set().union(*(_link_ids(v) for v in resource)) if resource else set()
    return set()


def test_view_keeps_allowed_items_with_their_structure_and_labels_it() -> None:
    original = _response()
    view = redact(original, policy().allowance(["housing"]), LABEL)
    assert _link_ids(view) == {
        "needs",
        "need-housing",
        "need-housing-urgency",
        "need-housing-wants-referral",
    }
    [needs] = view["item"]
    assert needs["text"] == "Needs"  # the group leading to the allowed items stays
    assert needs["item"][0]["answer"][0]["valueBoolean"] is True
    assert "text" not in view  # the narrative would repeat the withheld answers
    assert view["meta"]["versionId"] == "3"
    assert view["meta"]["lastUpdated"] == "2026-12-01T10:00:00Z"
    assert view["meta"]["security"] == [LABEL]
    assert LABEL["code"] == "REDACTED"
    assert view["meta"]["tag"] == [{"code": "x"}]
    assert original == _response()  # the stored content is never changed


def test_answer_only_items_show_their_answer_not_their_follow_ups() -> None:
    view = redact(_response(), policy().default, LABEL)
    assert _link_ids(view) == {"needs", "need-housing", "peer-support", "peer-support-offered"}
    housing = view["item"][0]["item"][0]
    assert housing["answer"] == [{"valueBoolean": True}]


def test_structure_without_an_allowed_answer_keeps_no_value() -> None:
    view = redact(_response(), Allowance(items=frozenset({"need-housing-urgency"})), LABEL)
    housing = view["item"][0]["item"][0]
    assert housing["linkId"] == "need-housing"
    assert housing["answer"] == [
        {"item": [{"linkId": "need-housing-urgency", "answer": [{"valueCoding": {"code": "soon"}}]}]}
    ]


def test_nothing_allowed_leaves_no_items_and_a_full_allowance_changes_nothing() -> None:
    empty = redact(_response(), Allowance(), LABEL)
    assert "item" not in empty
    assert empty["meta"]["security"] == [LABEL]
    plain = {k: v for k, v in _response().items() if k != "text"}
    everything = Allowance(items=frozenset(i["linkId"] for i in plain["item"]))
    assert redact(plain, everything, LABEL) is plain


def test_label_is_not_repeated() -> None:
    once = redact(_response(), Allowance(), LABEL)
    twice = redact(once | {"text": {"div": "x"}}, Allowance(), LABEL)
    assert twice["meta"]["security"] == [LABEL]


# -- whose grants decide ---------------------------------------------------------------------------------


def _create(store: ResourceStore, rtype: str, content: dict[str, Any]) -> Stored:
    return store.create(rtype, content, extract_index_rows(content), now=datetime.now(UTC))


def _service(store: ResourceStore, *codes: str) -> Stored:
    body: dict[str, Any] = {"resourceType": "HealthcareService", "active": True}
    if codes:
        body["category"] = [{"coding": [{"system": fp.SERVICE_CATEGORY_SYSTEM, "code": c}]} for c in codes]
    return _create(store, "HealthcareService", body)


def _referral(store: ResourceStore, performer: str) -> Stored:
    body = {"resourceType": "ServiceRequest", "status": "active", "intent": "order"}
    return _create(store, "ServiceRequest", {**body, "performer": [{"reference": performer}]})


def test_allowance_follows_the_granting_referrals_services(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        qr = _create(store, "QuestionnaireResponse", _response())
        other = _create(store, "QuestionnaireResponse", _response())
        housing, food = _service(store, "housing"), _service(store, "food")
        by_housing = _referral(store, f"HealthcareService/{housing.id}")
        by_food = _referral(store, f"HealthcareService/{food.id}")
        to_org = _referral(store, "Organization/p2")
        access.grant(conn, qr.rid, "clinic", "author")
        access.grant(conn, qr.rid, "p1", f"referral:{by_housing.id}")
        access.grant(conn, qr.rid, "p1", f"referral:{by_food.id}")
        access.grant(conn, qr.rid, "p2", f"referral:{to_org.id}")
        access.grant(conn, other.rid, "p1", f"referral:{by_housing.id}")

        got = allowances(conn, "p1", [qr.rid, other.rid])
        p = policy()
        assert got[qr.rid] == p.allowance(["housing", "food"])
        assert got[other.rid] == p.allowance(["housing"])
        assert allowances(conn, "p2", [qr.rid]) == {qr.rid: p.default}
        assert allowances(conn, "clinic", [qr.rid]) == {qr.rid: None}  # its own grant: the whole
        assert allowances(conn, "stranger", [qr.rid]) == {qr.rid: Allowance()}  # fail closed

        [p1_view, task] = organization_views(
            conn, "p1", [qr, Stored(0, "Task", "t", 1, qr.last_updated, False, {"resourceType": "Task"})]
        )
        assert "need-alcohol-drugs-chemsex" not in _link_ids(p1_view)
        assert task == {"resourceType": "Task"}
        clinic = Caller("c", "clinic", "clinic", "system/*.rs", "j")
        partner = Caller("p", "p1", "partner", "system/*.rs", "j")
        assert caller_views(conn, clinic, [qr]) == [qr.content]
        assert caller_views(conn, partner, [qr]) == [p1_view]

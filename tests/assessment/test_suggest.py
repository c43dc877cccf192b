"""Needs from a response, and services suggested for them through the shipped ConceptMap."""

from __future__ import annotations

from typing import Any

import pytest

import fhir_profiles as fp
from service.assessment.suggest import Need, consent_model, identified_needs, match_services

CONCEPT_MAP = fp.load_by_url(fp.NEED_TO_SERVICE_CATEGORY_URL)
URGENCY = fp.NEED_URGENCY_SYSTEM


def _need_item(code: str, yes: bool, urgency: str | None = None, has_help: bool | None = None,
               wants: bool | None = None) -> dict[str, Any]:  # fmt: skip
    lid = f"need-{code}"
    children: list[dict[str, Any]] = []
    if urgency is not None:
        children.append(
            {"linkId": f"{lid}-urgency", "answer": [{"valueCoding": {"system": URGENCY, "code": urgency}}]}
        )
    if has_help is not None:
        children.append({"linkId": f"{lid}-has-help", "answer": [{"valueBoolean": has_help}]})
    if wants is not None:
        children.append({"linkId": f"{lid}-wants-referral", "answer": [{"valueBoolean": wants}]})
    answer: dict[str, Any] = {"valueBoolean": yes}
    if children:
        answer["item"] = children  # R4: follow-ups nest under the answer
    return {"linkId": lid, "answer": [answer]}


def _qr(*need_items: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {"linkId": "ons4", "item": [{"linkId": "ons4-happy", "answer": [{"valueInteger": 6}]}]},
            {"linkId": "needs", "item": list(need_items)},
        ],
    }


def _demo_services() -> list[dict[str, Any]]:
    """The demo HealthcareServices with ids and references resolved, as a server would store them."""
    entries = fp.load_demo_directory()["entry"]
    slugs = {e["fullUrl"]: e["resource"]["identifier"][-1]["value"] for e in entries}
    services = []
    for entry in entries:
        resource = entry["resource"]
        if resource["resourceType"] == "HealthcareService":
            resource["id"] = slugs[entry["fullUrl"]]
            resource["providedBy"] = {
                "reference": "Organization/" + slugs[resource["providedBy"]["reference"]]
            }
            services.append(resource)
    return services


def test_identified_needs_reads_yes_answers_and_follow_ups() -> None:
    qr = _qr(
        _need_item("housing", True, urgency="now", has_help=False, wants=True),
        _need_item("food", False),
        _need_item("isolation", True),
    )
    assert identified_needs(qr) == [
        Need("housing", urgency="now", has_help=False, wants_referral=True),
        Need("isolation"),
    ]


def test_identified_needs_accepts_follow_ups_beside_the_question() -> None:
    qr = _qr(
        {"linkId": "need-debt", "answer": [{"valueBoolean": True}]},
        {"linkId": "need-debt-urgency", "answer": [{"valueCoding": {"system": URGENCY, "code": "soon"}}]},
        {"linkId": "need-debt-wants-referral", "answer": [{"valueBoolean": False}]},
    )
    assert identified_needs(qr) == [Need("debt", urgency="soon", wants_referral=False)]


def test_no_needs_when_none_answered_yes() -> None:
    assert identified_needs(_qr(_need_item("legal", False))) == []
    assert identified_needs({"resourceType": "QuestionnaireResponse", "status": "completed"}) == []


def test_money_and_debt_go_to_welfare_benefits() -> None:
    suggestions = match_services([Need("money-benefits"), Need("debt")], _demo_services(), CONCEPT_MAP)
    assert [(s.need.code, s.service_ref, s.equivalence) for s in suggestions] == [
        ("money-benefits", "HealthcareService/positive-east-welfare-benefits-debt", "wider"),
        ("debt", "HealthcareService/positive-east-welfare-benefits-debt", "wider"),
    ]
    assert suggestions[0].consent_model == "opt-in"
    assert suggestions[0].organization_ref == "Organization/positive-east"


def test_stigma_suggests_stigma_support_first_then_opt_out_peer_support() -> None:
    suggestions = match_services([Need("internalised-stigma")], _demo_services(), CONCEPT_MAP)
    categories = [s.service_category for s in suggestions]
    assert categories[0] == "stigma-support"
    assert set(categories[1:]) == {"peer-support"}
    assert len(categories) == 1 + 5  # five demo partners run peer support
    assert {s.consent_model for s in suggestions if s.service_category == "peer-support"} == {"opt-out"}
    assert suggestions[0].consent_model == "opt-in"


def test_inactive_services_and_unknown_needs_are_skipped() -> None:
    services = _demo_services()
    for service in services:
        if service["category"][0]["coding"][0]["code"] == "housing":
            service["active"] = False
    assert match_services([Need("housing")], services, CONCEPT_MAP) == []
    assert match_services([Need("not-a-need")], services, CONCEPT_MAP) == []


def test_a_service_is_suggested_once_per_need() -> None:
    service = {
        "resourceType": "HealthcareService",
        "id": "both",
        "name": "Both",
        "category": [
            {"coding": [{"system": fp.SERVICE_CATEGORY_SYSTEM, "code": "isolation-befriending"}]},
            {"coding": [{"system": fp.SERVICE_CATEGORY_SYSTEM, "code": "peer-support"}]},
        ],
    }
    (suggestion,) = match_services([Need("isolation")], [service], CONCEPT_MAP)
    assert (suggestion.service_category, suggestion.equivalence) == ("isolation-befriending", "equivalent")


@pytest.mark.parametrize(
    ("extension", "expected"),
    [
        ([], "opt-in"),
        ([{"url": fp.CONSENT_MODEL_URL, "valueCode": "opt-out"}], "opt-out"),
        ([{"url": fp.CONSENT_MODEL_URL, "valueCode": "bogus"}], "opt-in"),
        ([{"url": "https://example.org/other", "valueCode": "opt-out"}], "opt-in"),
    ],
)
def test_consent_model_defaults_to_opt_in(extension: list[dict[str, Any]], expected: str) -> None:
    assert consent_model({"resourceType": "HealthcareService", "extension": extension}) == expected


def test_every_need_in_the_questionnaire_has_a_demo_service() -> None:
    needs = [Need(c["code"]) for c in fp.load_by_url(fp.NEED_SYSTEM)["concept"]]
    suggestions = match_services(needs, _demo_services(), CONCEPT_MAP)
    assert {s.need.code for s in suggestions} == {n.code for n in needs}

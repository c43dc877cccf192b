"""Needs found by the assessment, and directory services that could meet them.

Pure functions: the caller supplies the HealthcareServices (from the directory) and the
need-to-service-category ConceptMap (``fhir_profiles.NEED_TO_SERVICE_CATEGORY_URL``).
ConceptMap semantics: http://hl7.org/fhir/R4/conceptmap.html (equivalence is read target to source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_profiles import CONSENT_MODEL_URL, NEED_SYSTEM, SERVICE_CATEGORY_SYSTEM
from service.assessment._items import walk_items

_NEED_PREFIX = "need-"
_FOLLOW_UPS = ("-urgency", "-has-help", "-wants-referral")
_CONSENT_MODELS = frozenset({"opt-in", "opt-out"})
_DEFAULT_CONSENT_MODEL = "opt-in"  # CONTRACT.md: a service without the extension is opt-in
# Better matches first; "unmatched" and "disjoint" are not matches at all.
_EQUIVALENCE_RANK = {
    "equal": 0,
    "equivalent": 0,
    "wider": 1,
    "subsumes": 1,
    "narrower": 2,
    "specializes": 2,
    "inexact": 3,
    "relatedto": 4,
}


@dataclass(frozen=True)
class Need:
    code: str  # a code of the need CodeSystem
    urgency: str | None = None  # need-urgency code: now | soon | not-urgent
    has_help: bool | None = None
    wants_referral: bool | None = None


@dataclass(frozen=True)
class Suggestion:
    need: Need
    service_category: str  # service-category code that matched
    equivalence: str  # from the ConceptMap: how well the category meets the need
    service_ref: str | None  # "HealthcareService/{id}" when the service has an id
    service_name: str | None
    organization_ref: str | None  # HealthcareService.providedBy.reference
    consent_model: str  # opt-in | opt-out


def _first_answer(item: dict[str, Any]) -> dict[str, Any]:
    answers = item.get("answer") or [{}]
    first: dict[str, Any] = answers[0]
    return first


def identified_needs(qr: dict[str, Any]) -> list[Need]:
    """Needs answered "yes" (``need-<code>`` = true), in answer order, with their follow-up answers.

    Follow-ups are read wherever they are in the response: R4 puts them under the answer
    (answer.item), some form fillers put them beside it; the linkIds are unambiguous either way.
    """
    items = list(walk_items(qr.get("item", [])))
    by_link = {item.get("linkId"): item for item in items}
    needs = []
    for item in items:
        link_id = item.get("linkId")
        if not isinstance(link_id, str) or not link_id.startswith(_NEED_PREFIX):
            continue
        if link_id.endswith(_FOLLOW_UPS) or _first_answer(item).get("valueBoolean") is not True:
            continue
        urgency = _first_answer(by_link.get(f"{link_id}-urgency", {})).get("valueCoding", {}).get("code")
        has_help = _first_answer(by_link.get(f"{link_id}-has-help", {})).get("valueBoolean")
        wants = _first_answer(by_link.get(f"{link_id}-wants-referral", {})).get("valueBoolean")
        needs.append(
            Need(
                code=link_id.removeprefix(_NEED_PREFIX),
                urgency=urgency if isinstance(urgency, str) else None,
                has_help=has_help if isinstance(has_help, bool) else None,
                wants_referral=wants if isinstance(wants, bool) else None,
            )
        )
    return needs


def _category_targets(concept_map: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """need code -> [(service-category code, equivalence)], best equivalence first."""
    targets: dict[str, list[tuple[str, str]]] = {}
    for group in concept_map.get("group", []):
        if group.get("source") != NEED_SYSTEM or group.get("target") != SERVICE_CATEGORY_SYSTEM:
            continue
        for element in group.get("element", []):
            for target in element.get("target", []):
                equivalence = target.get("equivalence", "")
                if "code" in target and equivalence in _EQUIVALENCE_RANK:
                    targets.setdefault(element["code"], []).append((target["code"], equivalence))
    for found in targets.values():
        found.sort(key=lambda t: _EQUIVALENCE_RANK[t[1]])
    return targets


def consent_model(service: dict[str, Any]) -> str:
    """The service's consent model from the consent-model extension; opt-in when absent or unknown."""
    for ext in service.get("extension", []):
        if ext.get("url") == CONSENT_MODEL_URL and ext.get("valueCode") in _CONSENT_MODELS:
            code: str = ext["valueCode"]
            return code
    return _DEFAULT_CONSENT_MODEL


def _categories(service: dict[str, Any]) -> set[str]:
    return {
        coding["code"]
        for concept in service.get("category", [])
        for coding in concept.get("coding", [])
        if coding.get("system") == SERVICE_CATEGORY_SYSTEM and "code" in coding
    }


def match_services(
    needs: list[Need], services: list[dict[str, Any]], concept_map: dict[str, Any]
) -> list[Suggestion]:
    """Active services whose category the ConceptMap maps each need to: by need, then match quality.

    Each (need, service) pair appears once, with its best-matching category. Whether to act on a
    suggestion (the person may not want a referral) is the caller's decision: ``Suggestion.need``
    carries the answers.
    """
    targets = _category_targets(concept_map)
    active = [
        s for s in services if s.get("resourceType") == "HealthcareService" and s.get("active") is not False
    ]
    suggestions = []
    for need in needs:
        seen: set[int] = set()
        for category, equivalence in targets.get(need.code, []):
            matching = [s for s in active if category in _categories(s) and id(s) not in seen]
            for service in sorted(matching, key=lambda s: str(s.get("name", ""))):
                seen.add(id(service))
                suggestions.append(
                    Suggestion(
                        need=need,
                        service_category=category,
                        equivalence=equivalence,
                        service_ref=f"HealthcareService/{service['id']}" if "id" in service else None,
                        service_name=service.get("name"),
                        organization_ref=service.get("providedBy", {}).get("reference"),
                        consent_model=consent_model(service),
                    )
                )
    return suggestions

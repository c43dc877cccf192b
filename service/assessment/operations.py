"""``QuestionnaireResponse/{id}/$suggest-referrals``: needs found by an assessment and services for them.

Output is a ``Parameters`` resource (http://hl7.org/fhir/R4/parameters.html), one ``need`` part per
need answered "yes" and one ``suggestion`` part per (need, active HealthcareService) pair, the
service categories coming from the need-to-service-category ConceptMap held in the database.

Coverage area: when the caller passes ``area`` (a place name such as "London", or a Location
reference), a service that declares ``coverageArea`` is kept only if one of its areas matches the
area by reference or by name (display, Location name/alias, address city/district), including the
places the requested Location is ``partOf``. Services without ``coverageArea`` state no restriction
and are always kept; without ``area`` nothing is filtered. ``eligibility`` cannot be evaluated by
machine, so its text is returned for the person making the referral to read.
"""

from __future__ import annotations

from typing import Any

from fhir_profiles import (
    NEED_SYSTEM,
    NEED_TO_SERVICE_CATEGORY_URL,
    NEED_URGENCY_SYSTEM,
    SERVICE_CATEGORY_SYSTEM,
)
from service.access import policy
from service.access.minimise import caller_view
from service.assessment import canonical
from service.assessment.suggest import Need, Suggestion, identified_needs, match_services
from service.audit import record
from service.errors import BadRequest, Issue, NotFound
from service.rest import capability, interactions
from service.rest.context import Context
from service.rest.search import find

NAME = "suggest-referrals"
DEFINITION = "https://wraparound.org.uk/fhir/OperationDefinition/suggest-referrals"
_MAX_SERVICES = 1000
_MAX_PARENTS = 6

capability.register_operation("QuestionnaireResponse", NAME, DEFINITION)


def area_from(body: Any, query_area: str | None) -> str | None:
    """The optional ``area`` input, from the query string or a Parameters body."""
    if body is None:
        return query_area or None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequest(
            "The request body must be a Parameters resource",
            issues=[Issue(code="structure", diagnostics="expected a Parameters resource")],
        )
    for i, param in enumerate(body.get("parameter", [])):
        if not isinstance(param, dict) or param.get("name") != "area":
            continue
        for key in ("valueString", "valueCode"):
            if isinstance(param.get(key), str):
                return str(param[key])
        ref = param.get("valueReference")
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return str(ref["reference"])
        raise BadRequest(
            "area must be a string or a Location reference",
            issues=[
                Issue(
                    code="value",
                    diagnostics="area has no usable value",
                    expression=(f"Parameters.parameter[{i}]",),
                )
            ],
        )
    return query_area or None


def suggest_referrals(ctx: Context, qr_id: str, area: str | None = None) -> dict[str, Any]:
    policy.authorize(ctx.caller, "QuestionnaireResponse", "read")
    stored = interactions.load_visible(ctx, "QuestionnaireResponse", qr_id)
    # Needs only from the caller's view: a partner's suggestions never reveal withheld items.
    qr = caller_view(ctx.conn, ctx.caller, stored) or {}
    concept_map = canonical.resolve_content(ctx.conn, "ConceptMap", NEED_TO_SERVICE_CATEGORY_URL)
    if concept_map is None:
        raise NotFound(f"ConceptMap {NEED_TO_SERVICE_CATEGORY_URL} is not loaded on this server")
    needs = identified_needs(qr)
    services = _services(ctx, _categories(concept_map, needs))
    if area:
        places = _places(ctx, area)
        services = [s for s in services if _covers(ctx, s, places)]
    suggestions = match_services(needs, services, concept_map)
    by_ref = {f"HealthcareService/{s['id']}": s for s in services}
    need_names = canonical.code_displays(ctx.conn, NEED_SYSTEM)
    category_names = canonical.code_displays(ctx.conn, SERVICE_CATEGORY_SYSTEM)
    urgency_names = canonical.code_displays(ctx.conn, NEED_URGENCY_SYSTEM)
    parameters = [_need_part(n, need_names, urgency_names) for n in needs]
    parameters += [_suggestion_part(s, by_ref, need_names, category_names) for s in suggestions]
    subject = qr.get("subject", {}).get("reference")
    patients = [subject] if isinstance(subject, str) and subject.startswith("Patient/") else []
    record.access(ctx, "operation", [stored], patients=patients)
    result: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:
        result["parameter"] = parameters
    return result


def _categories(concept_map: dict[str, Any], needs: list[Need]) -> set[str]:
    wanted = {n.code for n in needs}
    return {
        target["code"]
        for group in concept_map.get("group", [])
        if group.get("target") == SERVICE_CATEGORY_SYSTEM
        for element in group.get("element", [])
        if element.get("code") in wanted
        for target in element.get("target", [])
        if "code" in target
    }


def _services(ctx: Context, categories: set[str]) -> list[dict[str, Any]]:
    """HealthcareServices in any of the categories (a public directory type: no visibility limit)."""
    if not categories:
        return []
    value = ",".join(f"{SERVICE_CATEGORY_SYSTEM}|{c}" for c in sorted(categories))
    rows = find(ctx, "HealthcareService", [("service-category", value)], limit=_MAX_SERVICES)
    return [s.content for s in rows if s.content is not None]


def _names_of(place: dict[str, Any]) -> set[str]:
    names = [place.get("name"), *place.get("alias", [])]
    address = place.get("address")
    if isinstance(address, dict):
        names += [address.get("city"), address.get("district")]
    return {n.strip().lower() for n in names if isinstance(n, str) and n.strip()}


def _places(ctx: Context, area: str) -> set[str]:
    """Lower-cased names and references that count as "in" the requested area."""
    places = {area.strip().lower()}
    ref = area.strip()
    if not ref.startswith("Location/"):
        return places
    for _ in range(_MAX_PARENTS):
        location = ctx.store.current("Location", ref.removeprefix("Location/"))
        if location is None or location.content is None:
            break
        places |= {ref.lower(), *_names_of(location.content)}
        parent = location.content.get("partOf", {}).get("reference")
        if not isinstance(parent, str) or parent.lower() in places:
            break
        ref = parent
    return places


def _covers(ctx: Context, service: dict[str, Any], places: set[str]) -> bool:
    areas = service.get("coverageArea") or []
    if not areas:
        return True
    for area in areas:
        ref, display = area.get("reference"), area.get("display")
        names = {display.strip().lower()} if isinstance(display, str) else set()
        if isinstance(ref, str) and ref.startswith("Location/"):
            names.add(ref.lower())
            location = ctx.store.current("Location", ref.removeprefix("Location/"))
            if location is not None and location.content is not None:
                names |= _names_of(location.content)
        if names & places:
            return True
    return False


def _coding(system: str, code: str, names: dict[str, str]) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if code in names:
        coding["display"] = names[code]
    return coding


def _need_part(need: Need, need_names: dict[str, str], urgency_names: dict[str, str]) -> dict[str, Any]:
    code = _coding(NEED_SYSTEM, need.code, need_names)
    part: list[dict[str, Any]] = [{"name": "code", "valueCoding": code}]
    if need.urgency is not None:
        urgency = _coding(NEED_URGENCY_SYSTEM, need.urgency, urgency_names)
        part.append({"name": "urgency", "valueCoding": urgency})
    if need.has_help is not None:
        part.append({"name": "hasHelp", "valueBoolean": need.has_help})
    if need.wants_referral is not None:
        part.append({"name": "wantsReferral", "valueBoolean": need.wants_referral})
    return {"name": "need", "part": part}


def _suggestion_part(
    suggestion: Suggestion,
    services: dict[str, dict[str, Any]],
    need_names: dict[str, str],
    category_names: dict[str, str],
) -> dict[str, Any]:
    service_ref: dict[str, str] = {"reference": suggestion.service_ref or ""}
    if suggestion.service_name:
        service_ref["display"] = suggestion.service_name
    part: list[dict[str, Any]] = [
        {"name": "need", "valueCoding": _coding(NEED_SYSTEM, suggestion.need.code, need_names)},
        {"name": "service", "valueReference": service_ref},
    ]
    if suggestion.organization_ref:
        part.append({"name": "organization", "valueReference": {"reference": suggestion.organization_ref}})
    part += [
        {
            "name": "serviceCategory",
            "valueCoding": _coding(SERVICE_CATEGORY_SYSTEM, suggestion.service_category, category_names),
        },
        {"name": "consentModel", "valueCode": suggestion.consent_model},
        {"name": "equivalence", "valueCode": suggestion.equivalence},
    ]
    service = services.get(suggestion.service_ref or "", {})
    eligibility = [e.get("comment") for e in service.get("eligibility", []) if isinstance(e, dict)]
    for text in eligibility:
        if isinstance(text, str) and text:
            part.append({"name": "eligibility", "valueString": text})
    return {"name": "suggestion", "part": part}

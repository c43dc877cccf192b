"""Minimisation per partner (issue 9), over real HTTP with real tokens, by every route a partner has.

A clinic completes a full assessment (every module and several needs, chemsex and sexual health
among them) and refers it to a partner's housing service. The partner then reaches the response by
every route it has — read, conditional read, vread, instance and type history, search by GET and by
POST ``_search``, ``_include`` (directly and iterated), ``_revinclude``, ``_summary``/``_elements``,
batch and transaction GET entries, ``$suggest-referrals`` and the delivery payload — and no linkId
outside the housing policy may appear anywhere in any body, while the housing items do. The clinic
reads the whole; score Observations stay with the clinic; a referral to an Organization (no service)
gets the policy's default view.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import fhir_profiles as fp
from adapters.fake import RECORDER
from service.access.minimise import policy
from service.assessment._items import walk_items
from service.delivery.operators import configure
from service.delivery.secrets import box_for
from service.settings import Settings
from tests.delivery._delivery_world import add_endpoint, drain
from tests.referrals._workflow_hub import Hub, entries, ok, permit
from tests.support.assessment import CANONICAL, QUESTIONNAIRE
from tests.support.clients import Client, FhirClients
from tests.support.live import TEST_SECRET_KEY

EVERY_LINK_ID = {i["linkId"] for i in walk_items(QUESTIONNAIRE["item"])}
CHOSEN_NEEDS = ("housing", "alcohol-drugs-chemsex", "sexual-health", "mental-wellbeing", "immigration")
CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _answer(question: dict[str, Any]) -> dict[str, Any]:
    kind = question["type"]
    if kind == "integer":
        return {"valueInteger": 3}
    if kind == "boolean":
        link_id = question["linkId"]
        if link_id.startswith("need-") and question.get("item"):
            return {"valueBoolean": link_id.removeprefix("need-") in CHOSEN_NEEDS}
        return {"valueBoolean": True}
    coding = question["answerOption"][0]["valueCoding"]
    return {"valueCoding": {k: v for k, v in coding.items() if k != "extension"}}


def _answered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every question of the Questionnaire answered (follow-ups under their answer, as R4 nests them)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if any(e.get("url") == CALCULATED for e in item.get("extension", [])):
            continue  # the server computes these
        if item["type"] == "group":
            out.append({"linkId": item["linkId"], "item": _answered(item.get("item", []))})
            continue
        answer = _answer(item)
        if item.get("item") and answer.get("valueBoolean") is True:
            answer["item"] = _answered(item["item"])
        elif item.get("item"):
            continue  # a need answered "no": its follow-ups are not enabled, so not answered
        out.append({"linkId": item["linkId"], "answer": [answer]})
    return out


def _link_ids(value: Any) -> set[str]:
    """Every linkId anywhere in a JSON body."""
    found: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("linkId"), str):
            found.add(value["linkId"])
        for child in value.values():
            found |= _link_ids(child)
    elif isinstance(value, list):
        for child in value:
            found |= _link_ids(child)
    return found


def _visible(categories: list[str | None]) -> tuple[set[str], set[str]]:
    """(linkIds the policy shows for these services, the group linkIds that may carry them)."""
    allowed = policy().allowance(categories)
    shown = set(allowed.answer_only)
    for item in walk_items(QUESTIONNAIRE["item"]):
        if item["linkId"] in allowed.items:
            shown |= {i["linkId"] for i in walk_items([item])}
    groups = {i["linkId"] for i in QUESTIONNAIRE["item"]}
    return shown, groups


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


def _housing_service(hub: Hub) -> str:
    body = {
        "resourceType": "HealthcareService",
        "active": True,
        "name": "Housing advice",
        "providedBy": {"reference": hub.partner.org_ref},
        "category": [{"coding": [{"system": fp.SERVICE_CATEGORY_SYSTEM, "code": "housing"}]}],
    }
    return f"HealthcareService/{ok(hub.admin.post('/fhir/HealthcareService', json=body), 201)['id']}"


def _fake_endpoint(hub: Hub, settings: Settings) -> str:
    channel = f"minimisation-{time.monotonic_ns()}"
    endpoint = add_endpoint(hub.admin, hub.partner.organization_id, "fake", "http://127.0.0.1:9/fake")
    with hub.fhir.db.transaction() as conn:
        configure(
            conn,
            endpoint,
            {"channel": channel},
            box_for(Settings(secret_key=TEST_SECRET_KEY)),
            datetime.now(UTC),
        )
    return channel


def _assessment(hub: Hub, patient: str) -> dict[str, Any]:
    body = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": CANONICAL,
        "status": "completed",
        "subject": {"reference": patient},
        "author": {"reference": hub.clinic.org_ref},
        "authored": "2026-11-20T10:00:00Z",
        "item": _answered(QUESTIONNAIRE["item"]),
    }
    created = ok(hub.clinic.post("/fhir/QuestionnaireResponse", json=body), 201)
    assert {"pozqol", "need-alcohol-drugs-chemsex", "need-sexual-health", "phq4-1"} <= _link_ids(created)
    # A second version, so history and vread have more than one to give.
    created["authored"] = "2026-11-21T10:00:00Z"
    return ok(hub.clinic.put(f"/fhir/QuestionnaireResponse/{created['id']}", json=created))


def _partner_bodies(
    partner: Client, qr: dict[str, Any], patient: str, request_id: str, task_id: str
) -> Iterator[tuple[str, Any]]:
    """(route, response body) for every route by which the partner can reach the response."""
    qid, version = qr["id"], qr["meta"]["versionId"]
    path = f"/fhir/QuestionnaireResponse/{qid}"
    gets = {
        "read": path,
        "vread (current)": f"{path}/_history/{version}",
        "vread (first)": f"{path}/_history/1",
        "instance history": f"{path}/_history",
        "type history": "/fhir/QuestionnaireResponse/_history",
        "search by subject": f"/fhir/QuestionnaireResponse?subject={patient}",
        "search by _id": f"/fhir/QuestionnaireResponse?_id={qid}",
        "_summary=true": f"/fhir/QuestionnaireResponse?_id={qid}&_summary=true",
        "_summary=data": f"/fhir/QuestionnaireResponse?_id={qid}&_summary=data",
        "_summary=text": f"/fhir/QuestionnaireResponse?_id={qid}&_summary=text",
        "_elements=item": f"/fhir/QuestionnaireResponse?_id={qid}&_elements=item,text,contained",
        "_include supporting-info": (
            f"/fhir/ServiceRequest?_id={request_id}&_include=ServiceRequest:supporting-info"
        ),
        "_include:iterate from Task": (
            f"/fhir/Task?_id={task_id}&_include=Task:focus&_include:iterate=ServiceRequest:supporting-info"
        ),
        "_revinclude subject": (
            f"/fhir/Patient?_id={patient.split('/')[1]}&_revinclude=QuestionnaireResponse:subject"
        ),
        "_revinclude scores": f"/fhir/QuestionnaireResponse?_id={qid}&_revinclude=Observation:derived-from",
    }
    for route, url in gets.items():
        yield route, ok(partner.get(url))
    # Conditional read: a stale ETag gets the body (the view), the current one 304 and no body.
    stale = partner.get(path, headers={"If-None-Match": 'W/"1"'})
    yield "conditional read (changed)", ok(stale)
    assert stale.headers["ETag"] == f'W/"{version}"'
    fresh = partner.get(path, headers={"If-None-Match": f'W/"{version}"'})
    assert fresh.status_code == 304
    assert not fresh.content
    yield (
        "POST _search",
        ok(partner.post("/fhir/QuestionnaireResponse/_search", headers=FORM, data={"_id": qid})),
    )
    requests = [
        {"method": "GET", "url": f"QuestionnaireResponse/{qid}"},
        {"method": "GET", "url": f"QuestionnaireResponse/{qid}/_history/{version}"},
        {"method": "GET", "url": f"QuestionnaireResponse/{qid}/_history"},
        {"method": "GET", "url": f"QuestionnaireResponse?_id={qid}"},
        {"method": "GET", "url": f"ServiceRequest?_id={request_id}&_include=ServiceRequest:supporting-info"},
    ]
    for kind in ("batch", "transaction"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [{"request": r} for r in requests]}
        answered = ok(partner.post("/fhir", json=bundle))
        assert [e["response"]["status"] for e in answered["entry"]] == ["200 OK"] * len(requests)
        yield f"{kind} GET entries", answered
    yield "$suggest-referrals", ok(partner.post(f"{path}/$suggest-referrals"))


def test_a_partner_sees_only_its_services_part_of_an_assessment_by_every_route(
    hub: Hub, settings: Settings
) -> None:
    channel = _fake_endpoint(hub, settings)
    housing = _housing_service(hub)
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    qr = _assessment(hub, patient)
    request_id, task = hub.referred(
        patient,
        housing,
        supportingInfo=[{"reference": consent}, {"reference": f"QuestionnaireResponse/{qr['id']}"}],
    )
    shown, groups = _visible(["housing"])
    assert shown == {
        "need-housing",
        "need-housing-urgency",
        "need-housing-has-help",
        "need-housing-wants-referral",
    }
    allowed = shown | groups

    # The clinic reads the whole, with no label.
    whole = ok(hub.clinic.get(f"/fhir/QuestionnaireResponse/{qr['id']}"))
    assert _link_ids(whole) == _link_ids(qr)
    assert "security" not in whole.get("meta", {})

    reached = 0
    for route, body in _partner_bodies(hub.partner, qr, patient, request_id, task["id"]):
        found = _link_ids(body)
        assert found <= allowed, f"{route} shows {sorted(found - allowed)}"
        if route.startswith("_summary") or route == "$suggest-referrals":
            continue
        assert shown <= found, f"{route} lacks {sorted(shown - found)}"
        reached += 1
    assert reached == 16

    # The view is labelled and keeps the stored version's metadata; the items under need-housing stay nested.
    view = ok(hub.partner.get(f"/fhir/QuestionnaireResponse/{qr['id']}"))
    assert view["meta"]["security"] == [policy().label]
    assert view["meta"]["versionId"] == qr["meta"]["versionId"]
    assert view["meta"]["lastUpdated"] == qr["meta"]["lastUpdated"]
    [needs] = view["item"]
    assert needs["linkId"] == "needs"
    assert [i["linkId"] for i in needs["item"]] == ["need-housing"]

    # $suggest-referrals names only the needs the partner may see.
    suggested = ok(hub.partner.post(f"/fhir/QuestionnaireResponse/{qr['id']}/$suggest-referrals"))
    needs_named = {
        part["valueCoding"]["code"]
        for p in suggested.get("parameter", [])
        for part in p.get("part", [])
        if part.get("valueCoding", {}).get("system") == fp.NEED_SYSTEM
    }
    assert needs_named == {"housing"}

    # Score Observations stay with the clinic.
    scores = entries(hub.clinic.get(f"/fhir/Observation?derived-from=QuestionnaireResponse/{qr['id']}"))
    assert scores
    assert entries(hub.partner.get(f"/fhir/Observation?derived-from=QuestionnaireResponse/{qr['id']}")) == []
    assert hub.partner.get(f"/fhir/Observation/{scores[0]['id']}").status_code == 404

    # The delivery payload is the same view.
    drain(hub.fhir.db, settings)
    [delivery] = RECORDER.of(channel)
    bundle: Any = delivery.bundle
    [sent] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"
    ]
    assert _link_ids(sent) == _link_ids(view)
    assert sent["meta"]["security"] == [policy().label]
    assert sent["item"] == view["item"]


def test_a_referral_to_an_organization_gets_the_default_view(hub: Hub) -> None:
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.other_partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    qr = _assessment(hub, patient)
    hub.referred(
        patient,
        hub.other_partner.org_ref,
        supportingInfo=[{"reference": consent}, {"reference": f"QuestionnaireResponse/{qr['id']}"}],
    )
    view = ok(hub.other_partner.get(f"/fhir/QuestionnaireResponse/{qr['id']}"))
    shown, groups = _visible([None])
    found = _link_ids(view)
    assert found <= shown | groups
    # The peer-support offer and the headers of the needs answered, but no follow-up and no module.
    assert {"peer-support-offered", "need-housing", "need-immigration"} <= found
    assert not found & {"need-housing-urgency", "need-alcohol-drugs-chemsex", "need-sexual-health", "ons4"}
    housing = next(i for i in view["item"][0]["item"] if i["linkId"] == "need-housing")
    assert housing["answer"] == [{"valueBoolean": True}]
    # The first partner, never referred this response, cannot see it at all.
    assert hub.partner.get(f"/fhir/QuestionnaireResponse/{qr['id']}").status_code == 404


def test_every_service_category_view_holds_only_its_policy(hub: Hub, fhir: FhirClients) -> None:
    """One referral per category: each partner's read holds exactly its category's items and groups."""
    patient = hub.patient()
    qr = _assessment(hub, patient)
    for code in sorted({c["code"] for c in fp.load_by_url(fp.SERVICE_CATEGORY_SYSTEM)["concept"]}):
        organization = {"resourceType": "Organization", "name": f"Partner for {code}"}
        partner = fhir.client(
            "partner", ok(hub.admin.post("/fhir/Organization", json=organization), 201)["id"]
        )
        body = {
            "resourceType": "HealthcareService",
            "active": True,
            "providedBy": {"reference": partner.org_ref},
            "category": [{"coding": [{"system": fp.SERVICE_CATEGORY_SYSTEM, "code": code}]}],
        }
        service = ok(hub.admin.post("/fhir/HealthcareService", json=body), 201)["id"]
        consent = hub.consent(patient, permit(partner.org_ref), dateTime="2026-11-30T10:00:00Z")
        hub.referred(
            patient,
            f"HealthcareService/{service}",
            supportingInfo=[{"reference": consent}, {"reference": f"QuestionnaireResponse/{qr['id']}"}],
        )
        shown, groups = _visible([code])
        answered = _link_ids(qr)
        found = _link_ids(ok(partner.get(f"/fhir/QuestionnaireResponse/{qr['id']}")))
        assert found - groups == (shown & answered) - groups, code
        assert found <= EVERY_LINK_ID


def test_a_client_registered_with_the_wrong_role_for_a_partner_still_gets_the_partners_view(
    hub: Hub, fhir: FhirClients
) -> None:
    # An operator's slip: `clients add --role clinic` for a partner's Organization. What an organisation
    # receives of an assessment follows its grants, not the role it was registered with.
    housing = _housing_service(hub)
    patient = hub.patient()
    consent = hub.consent(patient, permit(hub.partner.org_ref), dateTime="2026-11-30T10:00:00Z")
    qr = _assessment(hub, patient)
    hub.referred(
        patient,
        housing,
        supportingInfo=[{"reference": consent}, {"reference": f"QuestionnaireResponse/{qr['id']}"}],
    )
    misregistered = fhir.client("clinic", hub.partner.organization_id)
    response = misregistered.get(f"/fhir/QuestionnaireResponse/{qr['id']}")
    assert response.status_code == 200, response.text
    shown, groups = _visible(["housing"])
    assert _link_ids(response.json()) <= shown | groups
    assert response.json()["meta"]["security"] == [policy().label]

"""A recorded decline of peer support (CONTRACT.md "What counts as consent", issue 9 "Decline honoured").

The needs assessment (Questionnaire wellbeing-needs-assessment) records the peer-support offer: item
``peer-support-outcome``, answered from the CodeSystem peer-support-outcome; ``declined`` is the person's
opt-out of peer support (the CodeSystem's own definition). The person's latest word wins: the *latest*
completed (or amended) response about the Patient that the referring clinic can see, by ``authored``, is
the one read. If it records ``declined``, a referral to a peer-support service (HealthcareService.category
or .type coded ``peer-support`` in the service-category CodeSystem) needs a disclosure consent naming the
partner that was given after that response (``Consent.dateTime`` after ``authored``), for opt-out *and*
opt-in services (an opt-in permit older than the decline no longer says what the person wants).

A later response that records another outcome, or no outcome, lifts it: the latest response is the record
of the person's current choice. An Organization performer counts as peer support when any of its active
services is one (fail closed: the hub cannot tell which of its services the referral is for).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_profiles import ASSESSMENT_URL, PEER_SUPPORT_OUTCOME_SYSTEM, SERVICE_CATEGORY_SYSTEM
from service.referrals._period import certainly_after
from service.referrals.consent import Decline
from service.rest.context import Context
from service.storage import referrals as referral_sql
from service.storage.resources import Stored

PEER_SUPPORT = "peer-support"
OUTCOME_LINK_ID = "peer-support-outcome"
DECLINED = "declined"


def is_peer_support(service: dict[str, Any]) -> bool:
    """HealthcareService.category or .type carries the service-category code ``peer-support``."""
    concepts = [*(service.get("category") or []), *(service.get("type") or [])]
    return any(
        isinstance(coding, dict)
        and coding.get("system") == SERVICE_CATEGORY_SYSTEM
        and coding.get("code") == PEER_SUPPORT
        for concept in concepts
        if isinstance(concept, dict)
        for coding in concept.get("coding") or []
    )


def organization_offers_peer_support(ctx: Context, organization_id: str) -> bool:
    return any(
        s.content is not None and s.content.get("active") is not False and is_peer_support(s.content)
        for s in referral_sql.services_of(ctx.conn, organization_id)
    )


def recorded_decline(ctx: Context, patient_id: str, clinic_org_id: str) -> Decline | None:
    """The peer-support decline in the patient's latest completed assessment the clinic can see, if any."""
    latest = latest_assessment(referral_sql.completed_responses(ctx.conn, patient_id, clinic_org_id))
    if latest is None or latest.content is None or not declines_peer_support(latest.content):
        return None
    return Decline(latest.id, _authored(latest))


def latest_assessment(responses: list[Stored]) -> Stored | None:
    """The response to the needs assessment (any version) authored last; ties go to the later write."""
    latest: Stored | None = None
    for response in responses:
        content = response.content or {}
        if str(content.get("questionnaire") or "").split("|", 1)[0] != ASSESSMENT_URL:
            continue
        if latest is None or not _same_or_before(_authored(response), _authored(latest), response, latest):
            latest = response
    return latest


def declines_peer_support(response: dict[str, Any]) -> bool:
    return any(
        isinstance(answer, dict)
        and isinstance(answer.get("valueCoding"), dict)
        and answer["valueCoding"].get("system") == PEER_SUPPORT_OUTCOME_SYSTEM
        and answer["valueCoding"].get("code") == DECLINED
        for item in _items(response.get("item"))
        if item.get("linkId") == OUTCOME_LINK_ID
        for answer in item.get("answer") or []
    )


def _same_or_before(candidate: str, current: str, candidate_row: Stored, current_row: Stored) -> bool:
    """Whether ``candidate`` should not replace ``current`` as the latest (authored, then write order)."""
    if certainly_after(candidate, current):
        return False
    if certainly_after(current, candidate):
        return True
    return candidate_row.rid < current_row.rid


def _authored(response: Stored) -> str:
    """QuestionnaireResponse.authored; a response without one is dated by when the hub stored it."""
    authored = (response.content or {}).get("authored")
    return authored if isinstance(authored, str) else response.last_updated.isoformat()


def _items(items: object) -> Iterator[dict[str, Any]]:
    """Every item of a QuestionnaireResponse, nested under items or under answers."""
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        yield item
        yield from _items(item.get("item"))
        for answer in item.get("answer") or []:
            if isinstance(answer, dict):
                yield from _items(answer.get("item"))

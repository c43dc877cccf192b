"""What a partner's worker does to a referral, each one Task update (or, for a withdrawal, one Consent)
through ``rest.interactions`` as the person: the same authorisation, state machine
(``referrals.lifecycle``), field rules (``referrals.task_rules``), after-write effects (the ServiceRequest
follows, the clinic is told through the outbox) and audit as a PUT from the API.

The form carries the Task version the person looked at, sent as ``If-Match``: when someone changed the
referral meanwhile the move is refused (412) instead of overwriting their change; so is a form without
a version (a tampered or hand-made post), which would otherwise overwrite blind.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fhir_profiles import TASK_BUSINESS_STATUS_SYSTEM
from service.errors import BusinessRuleViolation, Issue, PreconditionFailed
from service.rest import interactions
from service.rest.context import Context
from service.web.labels import BUSINESS_STATUS

_V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def _text(form: dict[str, str], name: str) -> str:
    return " ".join(form.get(name, "").split())[:1000]


def _business(task: dict[str, Any], code: str) -> None:
    task["businessStatus"] = {
        "coding": [{"system": TASK_BUSINESS_STATUS_SYSTEM, "code": code, "display": BUSINESS_STATUS[code]}]
    }


def _reason(task: dict[str, Any], text: str) -> None:
    if text:
        task["statusReason"] = {"text": text}
    else:
        task.pop("statusReason", None)  # no reason given: the rules say whether one is needed


def accept(task: dict[str, Any], form: dict[str, str]) -> None:
    task["status"] = "accepted"


def reject(task: dict[str, Any], form: dict[str, str]) -> None:
    task["status"] = "rejected"
    _reason(task, _text(form, "reason"))


def contact_attempted(task: dict[str, Any], form: dict[str, str]) -> None:
    _business(task, "contact-attempted")


def contacted(task: dict[str, Any], form: dict[str, str]) -> None:
    _business(task, "contacted")
    if task.get("status") in ("accepted", "on-hold"):
        task["status"] = "in-progress"


def hold(task: dict[str, Any], form: dict[str, str]) -> None:
    task["status"] = "on-hold"
    _reason(task, _text(form, "reason"))


def resume(task: dict[str, Any], form: dict[str, str]) -> None:
    task["status"] = "in-progress"
    task.pop("statusReason", None)


def complete(task: dict[str, Any], form: dict[str, str]) -> None:
    outcome = _text(form, "outcome")
    if not outcome:
        raise BusinessRuleViolation(
            "Say what the outcome was to complete a referral",
            issues=[Issue(code="required", diagnostics="Say what the outcome was to complete a referral")],
        )
    task["status"] = "completed"
    task["output"] = [*task.get("output", []), {"type": {"text": "Outcome"}, "valueString": outcome}]


TASK_ACTIONS: dict[str, Callable[[dict[str, Any], dict[str, str]], None]] = {
    "accept": accept,
    "reject": reject,
    "contact-attempted": contact_attempted,
    "contacted": contacted,
    "hold": hold,
    "resume": resume,
    "complete": complete,
}
# What the page says after each action worked (post/redirect/get: ``?done=<action>``).
DONE = {
    "accept": "Referral accepted.",
    "reject": "Referral rejected. The clinic has been told why.",
    "contact-attempted": "Contact attempt recorded.",
    "contacted": "Contact with the person recorded.",
    "hold": "Referral put on hold.",
    "resume": "Referral back in progress.",
    "complete": "Referral completed. The clinic can see the outcome.",
    "withdrawal": (
        "Withdrawal recorded. The referral is cancelled and its details are no longer shared with you."
    ),
}


def move(ctx: Context, task_id: str, action: str, version: str, form: dict[str, str]) -> None:
    """Apply one action to the Task; raises the domain's typed errors (422 with the rule, 404, 412)."""
    change = TASK_ACTIONS[action]
    if not version.isdigit():
        # Every form carries the version it showed; without one the move would overwrite blind.
        raise PreconditionFailed("The form did not say which version of the Task it showed")
    current = interactions.read(ctx, "Task", task_id).body
    assert current is not None
    task = copy.deepcopy(current)
    change(task, form)
    interactions.update(ctx, "Task", task_id, task, if_match=f'W/"{version}"')


def record_withdrawal(ctx: Context, task_id: str) -> None:
    """The person told the partner they withdraw their consent: a deny Consent naming only this partner
    (``referrals.recorded_withdrawal``); the hub then cancels the partner's open Tasks and ends its access."""
    task = interactions.read(ctx, "Task", task_id).body or {}
    patient = (task.get("for") or {}).get("reference")
    own = ctx.caller.organization_ref
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "dateTime": ctx.instant,
        "organization": [{"reference": own}],
        "performer": [{"reference": patient}],
        "sourceAttachment": {"title": "Withdrawal told to the partner, recorded in the Wraparound web app"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": {
            "type": "deny",
            "actor": [
                {"role": {"coding": [{"system": _V3_ROLE, "code": "IRCP"}]}, "reference": {"reference": own}}
            ],
        },
    }
    interactions.create(ctx, "Consent", consent)

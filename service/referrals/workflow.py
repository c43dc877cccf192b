"""The closed-loop referral workflow, wired into the REST core (imported once from ``service.wiring``).

Validation rules (``register_rule``; errors -> 422, nothing stored):
- Patient: NHS number (modulus 11) or a clinic-local identifier (``patient_identity``);
- clinic-written ServiceRequest, QuestionnaireResponse, Consent, PractitionerRole: authored as the clinic
  and linking only to clinical data the clinic can see (``authoring``);
- Consent: the hub's structural rules (``consent_form.consent_issues``); a partner may create only a
  withdrawal (``recorded_withdrawal``);
- ServiceRequest: a referral's shape, route and consent gate (``referral``);
- Task: no client creation; the state machine and field rules per side (``task_rules``).

Same-transaction hooks (``register_after_write``): a new referral opens its Task, grants the partner
access and queues ``referral.created``; a revoked referral cancels its Task; a Task update moves its
ServiceRequest and queues ``task.updated``; any Consent write, and any completed
assessment (a recorded peer-support decline), re-evaluates the Patient's referrals (``withdrawal``).
"""

from __future__ import annotations

from typing import Any

from service.errors import Issue
from service.referrals.authoring import clinic_authoring_rule, patient_identity_rule
from service.referrals.consent_form import consent_issues
from service.referrals.recorded_withdrawal import partner_consent_rule
from service.referrals.referral import on_referral_written, referral_rule
from service.referrals.task_rules import on_task_written, task_rule
from service.referrals.withdrawal import on_assessment_written, on_consent_written
from service.rest.context import Context
from service.rest.hooks import register_after_write
from service.rest.validation import register_rule
from service.storage.resources import Stored

_REGISTERED: list[bool] = []


def consent_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    return consent_issues(new)


def register() -> None:
    """Register every rule and hook once (importing this module does it)."""
    if _REGISTERED:
        return
    _REGISTERED.append(True)
    register_rule("Patient", patient_identity_rule)
    for resource_type in (
        "ServiceRequest",
        "QuestionnaireResponse",
        "Consent",
        "PractitionerRole",
        "Patient",
    ):
        register_rule(resource_type, clinic_authoring_rule)
    register_rule("Consent", consent_rule)
    register_rule("Consent", partner_consent_rule)
    register_rule("ServiceRequest", referral_rule)
    register_rule("Task", task_rule)
    register_after_write("ServiceRequest", on_referral_written)
    register_after_write("Task", on_task_written)
    register_after_write("Consent", on_consent_written)
    register_after_write("QuestionnaireResponse", on_assessment_written)


register()

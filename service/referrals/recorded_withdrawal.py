"""A partner records that the person withdrew (CONTRACT.md "What counts as consent", issue 9).

Withdrawing must be as easy as giving consent (UK GDPR Art. 7(3)); the person often says "stop" to the
partner's worker, not to the clinic. So a partner client with ``Consent.c`` may create one kind of Consent:
a withdrawal, i.e. an ``active`` ``patient-privacy`` Consent whose root provision is a plain ``deny``
naming only the partner's own Organization (any role), for a Patient it holds a referral for. Anything
else a partner writes as a Consent is refused (422, naming the rule); updates and deletes are not a
partner's to make (403, ``access.policy``).

The deny is then an ordinary Consent: the after-write hook (``withdrawal.on_consent_written``) shares it
with every clinic that referred the Patient to this partner (so the clinic reads it, finds it with
``Consent?patient=``, and its own view of the Patient's Consents, which ``routing.decide`` uses, contains
it) and re-evaluates the Patient's referrals at once, in the same transaction: the partner's open Tasks are
cancelled, its access removed, ``consent.withdrawn`` queued and the withdrawal audited. The partner keeps
reading the Consent it wrote (its ``author`` grant); nothing it writes can open a referral.
"""

from __future__ import annotations

from typing import Any

from service.errors import Issue
from service.fhir.references import as_list, reference_of
from service.referrals import _effects as effects
from service.referrals._period import period_covers
from service.referrals._refs import local_parts, local_ref, resolve_visible
from service.referrals.authoring import reference_issues
from service.referrals.consent import is_disclosure_scope
from service.referrals.routing import clinic_org_of_task
from service.rest.context import Context
from service.storage import access
from service.storage import referrals as referral_sql
from service.storage.resources import Stored

SHARED_REASON = "recorded-withdrawal"
_NARROWING = ("purpose", "action", "securityLabel", "class", "code", "dataPeriod", "data", "provision")
_RULE = "a partner may record only a withdrawal (an active patient-privacy deny naming only itself)"


def partner_consent_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    """422 issues for a partner's Consent that is not a withdrawal it may record."""
    if ctx.caller.role != "partner":
        return []
    if old is not None:
        return [_issue("Consent", f"{_RULE}; it may not change an existing Consent")]
    issues: list[Issue] = []
    if new.get("status") != "active":
        issues.append(_issue("Consent.status", f"{_RULE}: status must be 'active'"))
    if not is_disclosure_scope(new):
        issues.append(_issue("Consent.scope", f"{_RULE}: scope must be consentscope#patient-privacy"))
    issues.extend(_provision_issues(ctx, new.get("provision")))
    issues.extend(_author_issues(ctx, new))
    patient = reference_of(new.get("patient"))
    parts = local_parts(ctx, patient) if patient else None
    if parts is None or parts[0] != "Patient" or not _holds_referral(ctx, parts[1]):
        issues.append(
            Issue(
                code="not-found",
                diagnostics="Consent.patient: reference not found (a partner records a withdrawal only "
                "for a Patient it holds a referral for)",
                expression=("Consent.patient",),
            )
        )
    issues.extend(i for i in reference_issues(ctx, new) if i.expression != ("Consent.patient.reference",))
    return issues


def share_with_clinics(ctx: Context, consent: Stored) -> None:
    """Let every clinic that referred the Patient to this partner see the partner's withdrawal."""
    parts = local_parts(ctx, reference_of((consent.content or {}).get("patient")) or "")
    if parts is None:
        return
    for clinic in _referring_clinics(ctx, parts[1], ctx.caller.organization_id):
        access.grant(ctx.conn, consent.rid, clinic, SHARED_REASON)


def _provision_issues(ctx: Context, provision: object) -> list[Issue]:
    if not isinstance(provision, dict) or provision.get("type") != "deny":
        return [_issue("Consent.provision.type", f"{_RULE}: provision.type must be 'deny'")]
    issues: list[Issue] = []
    narrowed = [name for name in _NARROWING if provision.get(name)]
    if narrowed:
        issues.append(
            _issue(
                f"Consent.provision.{narrowed[0]}",
                f"{_RULE}: a withdrawal is a plain deny, without {', '.join(narrowed)}",
            )
        )
    period = provision.get("period")
    if period is not None and (not isinstance(period, dict) or period_covers(period, ctx.now) is not True):
        issues.append(_issue("Consent.provision.period", f"{_RULE}: a withdrawal takes effect now"))
    actors = as_list(provision.get("actor"))
    own = ctx.caller.organization_ref
    refs = [local_ref(ctx, reference_of(a.get("reference")) if isinstance(a, dict) else None) for a in actors]
    if not refs or any(r != own for r in refs):
        issues.append(
            _issue(
                "Consent.provision.actor",
                f"{_RULE}: every provision.actor must reference the partner's own Organization ({own})",
            )
        )
    return issues


def _author_issues(ctx: Context, consent: dict[str, Any]) -> list[Issue]:
    """Consent.organization is the partner itself; performer (who withdrew) the Patient or the partner."""
    own = ctx.caller.organization_ref
    patient = local_ref(ctx, reference_of(consent.get("patient")))
    issues = [
        _issue(f"Consent.organization[{i}]", f"Consent.organization must be {own}")
        for i, org in enumerate(as_list(consent.get("organization")))
        if local_ref(ctx, reference_of(org)) != own
    ]
    issues.extend(
        _issue(f"Consent.performer[{i}]", f"Consent.performer must be the Patient or {own}")
        for i, who in enumerate(as_list(consent.get("performer")))
        if local_ref(ctx, reference_of(who)) not in (own, patient)
    )
    return issues


def _holds_referral(ctx: Context, patient_id: str) -> bool:
    """The partner can read the Patient (only a referral grants that) and owns a Task for one of its
    referrals."""
    if resolve_visible(ctx, f"Patient/{patient_id}", ("Patient",)) is None:
        return False
    partner = ctx.caller.organization_id
    return any(
        effects.org_id_of(ctx, (task.content or {}).get("owner")) == partner
        for request in referral_sql.service_requests_for_patient(ctx.conn, patient_id)
        for task in referral_sql.tasks_focusing(ctx.conn, request.id)
    )


def _referring_clinics(ctx: Context, patient_id: str, partner: str) -> set[str]:
    clinics: set[str] = set()
    for request in referral_sql.service_requests_for_patient(ctx.conn, patient_id):
        for task in referral_sql.tasks_focusing(ctx.conn, request.id):
            content = task.content or {}
            clinic = clinic_org_of_task(content)
            if clinic is not None and effects.org_id_of(ctx, content.get("owner")) == partner:
                clinics.add(clinic)
    return clinics


def _issue(expression: str, message: str) -> Issue:
    return Issue(code="business-rule", diagnostics=message, expression=(expression,))

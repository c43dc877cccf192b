"""A referral is a ServiceRequest from a clinic; the hub checks it, then opens one Task for the partner.

CONTRACT.md "Referral flow" 1-3, after the HL7 Gravity SDOH Clinical Care referral workflow
(https://hl7.org/fhir/us/sdoh-clinicalcare/referral_workflow.html): ServiceRequest + Task, the Task owned
by the partner. Checks and consent gate run as a validation rule (a refusal stores nothing; the failed
request's AuditEvent, written after the rollback, carries the refusal reason); the Task, access grants,
outbox row and the "permitted" AuditEvent are written by the after-write hook in the same transaction.

``orderDetail`` (e.g. contacting-subject-prohibited) stays on the ServiceRequest as sent; nothing in the
hub contacts the subject, so there is nothing to filter until push delivery exists.
"""

from __future__ import annotations

from typing import Any

from service.errors import BusinessRuleViolation, Issue
from service.fhir.references import as_list, reference_of
from service.referrals import _effects as effects
from service.referrals._period import period_end
from service.referrals._refs import local_parts, resolve, resolve_visible
from service.referrals.routing import Route, decide, decision_text, resolve_route
from service.referrals.task_rules import open_tasks_of
from service.rest.context import Context
from service.search.extract import extract_index_rows
from service.storage import referrals as referral_sql
from service.storage.resources import Stored

TASK_CODE = {
    "system": "http://hl7.org/fhir/CodeSystem/task-code",
    "code": "fulfill",
    "display": "Fulfill the focal request",
}
# Elements that fix who the referral is for and where it goes: changing them is a new referral.
_FIXED = ("subject", "performer", "requester", "intent")
# Status changes a clinic may make on its referral (http://hl7.org/fhir/R4/valueset-request-status.html);
# completion follows the partner's Task, never the clinic.
_CLINIC_MOVES = {("active", "revoked")}


def referral_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    if ctx.caller.role != "clinic":
        return []
    if old is None:
        return _create_issues(ctx, new)
    return _update_issues(ctx, new, old.content or {})


def _create_issues(ctx: Context, request: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    if request.get("status") != "active":
        issues.append(_issue("ServiceRequest.status", "a referral is submitted with status 'active'"))
    if request.get("intent") != "order":
        issues.append(_issue("ServiceRequest.intent", "a referral is submitted with intent 'order'"))
    subject = reference_of(request.get("subject"))
    parts = local_parts(ctx, subject) if subject else None
    if parts is None or parts[0] != "Patient":
        issues.append(_issue("ServiceRequest.subject", "a referral's subject must reference a Patient"))
    if reference_of(request.get("requester")) is None:
        issues.append(
            _issue("ServiceRequest.requester", "a referral needs a requester (the referring clinic)")
        )
    route = resolve_route(ctx, request)
    if isinstance(route, Issue):
        issues.append(route)
    if issues or isinstance(route, Issue) or resolve_visible(ctx, subject, ("Patient",)) is None:
        return issues  # an unseen Patient is reported by the authoring rule as 'reference not found'
    decision = decide(ctx, request, route, ctx.caller.organization_id)
    if not decision.allowed:
        return [_issue("ServiceRequest", f"consent check failed: {decision.rule}")]
    ctx.memo[_DECIDED] = (route, decision)
    return []


_DECIDED = "referral:route-and-consent"


def _update_issues(ctx: Context, new: dict[str, Any], old: dict[str, Any]) -> list[Issue]:
    issues = [
        _issue(
            f"ServiceRequest.{name}",
            f"ServiceRequest.{name} cannot change once referred; submit a new referral instead",
        )
        for name in _FIXED
        if effects.canonical(new.get(name)) != effects.canonical(old.get(name))
    ]
    before, after = old.get("status"), new.get("status")
    if before != after and after != "entered-in-error" and (before, after) not in _CLINIC_MOVES:
        issues.append(
            _issue(
                "ServiceRequest.status",
                f"a clinic may move its referral from 'active' to 'revoked' (or mark it entered-in-error), "
                f"not from {before!r} to {after!r}",
            )
        )
    if not issues and before == after == "active":
        # An active referral that is written again must still be one consent allows (the same check as
        # at submission): a lapsed or withdrawn consent cannot be carried along by an edit.
        route = resolve_route(ctx, new)
        if isinstance(route, Issue):
            return [route]
        decision = decide(ctx, new, route, ctx.caller.organization_id)
        if not decision.allowed:
            issues.append(_issue("ServiceRequest", f"consent check failed: {decision.rule}"))
    return issues


def on_referral_written(ctx: Context, stored: Stored, old: Stored | None) -> None:
    if ctx.caller.role != "clinic":
        return
    if old is None and stored.content is not None:
        _open_referral(ctx, stored)
        return
    before = (old.content or {}).get("status") if old else None
    after = (stored.content or {}).get("status") if not stored.deleted else "revoked"
    if after in ("revoked", "entered-in-error") and before != after:
        close_referral(ctx, stored.id, "cancelled" if after == "revoked" else "entered-in-error")


def close_referral(ctx: Context, request_id: str, task_status: str) -> None:
    """The clinic withdrew the referral: its open Task stops and the partner loses the referral's data."""
    for task in open_tasks_of(ctx, request_id):
        partner = effects.org_id_of(ctx, (task.content or {}).get("owner"))
        moved = effects.move_task(ctx, task, task_status, "referral revoked by clinic")
        if partner is not None and moved is not None:
            effects.queue(ctx, "task.updated", partner, f"Task/{task.id}", {"task": f"Task/{task.id}"})
    for partner in _partners_of(ctx, request_id):
        effects.revoke_partner(ctx, partner, request_id)


def _open_referral(ctx: Context, request: Stored) -> None:
    content = request.content or {}
    decided = ctx.memo.pop(_DECIDED, None)
    if decided is not None:  # the create rule just resolved the route and decided consent
        route, decision = decided
    else:
        found = resolve_route(ctx, content)
        if not isinstance(found, Route):
            raise BusinessRuleViolation(found.diagnostics, issues=[found])
        route = found
        decision = decide(ctx, content, route, ctx.caller.organization_id)
    if not decision.allowed:
        raise BusinessRuleViolation(f"consent check failed: {decision.rule}")
    patient = resolve(ctx, reference_of(content.get("subject")), ("Patient",))
    if patient is None:
        raise BusinessRuleViolation("a referral's subject must reference a Patient")
    supporting = [
        s
        for s in (
            resolve_visible(ctx, reference_of(info), ("Consent", "QuestionnaireResponse"))
            for info in as_list(content.get("supportingInfo"))
        )
        if s is not None
    ]
    deciding = resolve(ctx, f"Consent/{decision.consent_id}", ("Consent",)) if decision.consent_id else None
    assessments = [s for s in supporting if s.resource_type == "QuestionnaireResponse"]
    task = _create_task(ctx, request, patient, route, assessments)
    shared = [request, patient, *([deciding] if deciding else []), *supporting]
    # An opt-in referral (or one past a recorded decline) rests on the permitting Consent: the partner's
    # access to the data lapses with that Consent's period ("while consent permits"), without waiting.
    lapses = (
        period_end(((deciding.content or {}).get("provision") or {}).get("period"))
        if (deciding is not None and decision.rests_on_consent)
        else None
    )
    effects.grant_partner(ctx, route.partner_org_id, request.id, shared, valid_until=lapses)
    effects.queue(
        ctx,
        "referral.created",
        route.partner_org_id,
        f"Task/{task.id}",
        {"task": f"Task/{task.id}", "serviceRequest": f"ServiceRequest/{request.id}"},
    )
    audited = [request, *([deciding] if deciding else [])]
    effects.audit(ctx, "consent-decision", decision_text(decision), audited, "create")


def _create_task(
    ctx: Context, request: Stored, patient: Stored, route: Route, assessments: list[Stored]
) -> Stored:
    """The one fulfilment Task of a referral (status requested, owner the partner organisation)."""
    now = ctx.instant
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [TASK_CODE]},
        "focus": {"reference": f"ServiceRequest/{request.id}"},
        "for": {"reference": f"Patient/{patient.id}"},
        "authoredOn": now,
        "lastModified": now,
        "requester": {"reference": ctx.caller.organization_ref},
        "owner": {"reference": route.partner_ref},
    }
    if assessments:
        task["input"] = [
            {
                "type": {"text": "needs-assessment"},
                "valueReference": {"reference": f"QuestionnaireResponse/{qr.id}"},
            }
            for qr in assessments
        ]
    grants = [(ctx.caller.organization_id, "requester"), (route.partner_org_id, "owner")]
    return ctx.store.create("Task", task, extract_index_rows(task), now=ctx.now, grants=grants)


def _partners_of(ctx: Context, request_id: str) -> set[str]:
    tasks = referral_sql.tasks_focusing(ctx.conn, request_id)
    owners = (effects.org_id_of(ctx, (t.content or {}).get("owner")) for t in tasks)
    return {o for o in owners if o is not None}


def _issue(expression: str, message: str) -> Issue:
    return Issue(code="business-rule", diagnostics=message, expression=(expression,))

"""Consent withdrawal takes effect at once (CONTRACT.md "Referral flow" 5, issue 4 "Consent withdrawal").

Any write to a Consent (made inactive, entered-in-error or rejected, a new deny, a narrowed period, a
deletion) re-evaluates every referral of that Patient, in the same transaction, exactly as the referral
was first checked (``routing.decide``, with the referring clinic's view of the Patient's Consents).
A referral consent no longer permits:

- open Task: cancelled by the hub (statusReason "consent withdrawn"), its ServiceRequest revoked, and an
  outbox row ``consent.withdrawn`` for the partner carrying only the Task id;
- any Task: the partner's ``referral:<ServiceRequest id>`` access rows are revoked, so the Patient,
  ServiceRequest, Consent and QuestionnaireResponse disappear for it; its Task stays readable (an
  ``owner`` row): a completed Task stays completed;
- an AuditEvent records the withdrawal and what it touched.

A referral already revoked (or entered in error) needs nothing more. Re-evaluating on every Consent
write, not only on recognised "withdrawals", means any change that stops covering a referral counts: a
partner-recorded deny (``recorded_withdrawal``, shared with the referring clinics first so that their view
holds it), and a new completed assessment that records a peer-support decline (``decline``). Re-evaluation
only ever closes: nothing here opens or re-opens a referral.
"""

from __future__ import annotations

from typing import Any

from service.fhir.references import reference_of
from service.referrals import _effects as effects
from service.referrals._refs import local_parts
from service.referrals.consent import ConsentDecision
from service.referrals.recorded_withdrawal import share_with_clinics
from service.referrals.routing import Route, clinic_org_of_task, decide, resolve_route
from service.rest.context import Context
from service.storage import referrals as referral_sql
from service.storage.resources import Stored

WITHDRAWN_REASON = "consent withdrawn"
_LIVE_REQUESTS = ("active", "completed", "on-hold")


def on_consent_written(ctx: Context, stored: Stored, old: Stored | None) -> None:
    if ctx.caller.role == "partner" and old is None and stored.content is not None:
        share_with_clinics(ctx, stored)
    patients = {
        pid
        for content in (stored.content, old.content if old else None)
        if content is not None
        for pid in [_patient_id(ctx, content)]
        if pid is not None
    }
    for patient_id in sorted(patients):
        reevaluate_patient(ctx, patient_id, stored)


def on_assessment_written(ctx: Context, stored: Stored, old: Stored | None) -> None:
    """A completed assessment may record a peer-support decline: the Patient's referrals are re-checked."""
    content = stored.content or {}
    if stored.deleted or content.get("status") not in ("completed", "amended"):
        return
    patient_id = _patient_id(ctx, {"patient": content.get("subject")})
    if patient_id is not None:
        reevaluate_patient(ctx, patient_id, stored)


def reevaluate_patient(ctx: Context, patient_id: str, consent: Stored) -> None:
    for request in referral_sql.service_requests_for_patient(ctx.conn, patient_id):
        content = request.content or {}
        if content.get("status") not in _LIVE_REQUESTS:
            continue
        for task in referral_sql.tasks_focusing(ctx.conn, request.id):
            task_content = task.content or {}
            clinic = clinic_org_of_task(task_content)
            partner = effects.org_id_of(ctx, task_content.get("owner"))
            if clinic is None or partner is None:
                continue
            decision = decide(ctx, content, _route(ctx, content, partner), clinic)
            if not decision.allowed:
                _withdraw(ctx, consent, request, task, partner, decision)


def _route(ctx: Context, request: dict[str, Any], partner: str) -> Route:
    """The referral's route as it is now; if its service has since gone, judge it as opt-in (fail closed)."""
    route = resolve_route(ctx, request)
    if isinstance(route, Route) and route.partner_org_id == partner:
        return route
    return Route(partner, (), "opt-in")


def _withdraw(
    ctx: Context, consent: Stored, request: Stored, task: Stored, partner: str, decision: ConsentDecision
) -> None:
    touched: list[Stored] = [consent]
    done: list[str] = []
    if effects.is_open(task):
        moved = effects.move_task(ctx, task, "cancelled", WITHDRAWN_REASON)
        if moved is not None:
            touched.append(moved)
            touched.append(effects.set_request_status(ctx, request, "revoked"))
            if effects.cancel_undelivered(ctx, partner, task.id, WITHDRAWN_REASON):
                done.append(f"undelivered notices for Task/{task.id} cancelled")
            effects.queue(ctx, "consent.withdrawn", partner, f"Task/{task.id}", {"task": f"Task/{task.id}"})
            done.append(f"Task/{task.id} cancelled")
    if effects.revoke_partner(ctx, partner, request.id):
        done.append(f"Organization/{partner} access to ServiceRequest/{request.id} revoked")
    if done:
        effects.audit(
            ctx,
            "consent-withdrawal",
            f"{WITHDRAWN_REASON} ({decision.rule}): " + "; ".join(done),
            touched,
            "update",
        )


def _patient_id(ctx: Context, consent: dict[str, Any]) -> str | None:
    reference = reference_of(consent.get("patient"))
    parts = local_parts(ctx, reference) if reference else None
    return parts[1] if parts and parts[0] == "Patient" else None

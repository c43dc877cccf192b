"""Task updates from both sides of a referral, and the ServiceRequest following its Task.

The state machine and field rules are in ``referrals.lifecycle``; this module applies them to the caller:
a partner may update only Tasks it owns, a clinic only the Tasks of its own referrals (visibility already
hides other organisations' Tasks; this is the second check, on the Task's own owner/requester). Clients
never create Tasks: the hub opens one per referral (CONTRACT.md "Referral flow" 3).

After an update the ServiceRequest follows (``service_request_status_for``: completed, revoked), a
cancelled Task takes the referral's data away from the partner, and the other side is told through the
outbox (kind ``task.updated``, ids only).

Task.businessStatus is the partner's sub-state: free text, or codes from
https://wraparound.org.uk/fhir/CodeSystem/task-business-status (an extensible binding, so codings from
other systems are kept; a code claiming the hub's system must exist in it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_profiles import TASK_BUSINESS_STATUS_SYSTEM, load_by_url
from service.errors import Issue
from service.fhir.references import reference_of
from service.referrals import _effects as effects
from service.referrals._refs import local_ref, ref_id
from service.referrals.lifecycle import check_task_update, service_request_status_for
from service.rest.context import Context
from service.storage import referrals as referral_sql
from service.storage.resources import Stored


def task_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    if old is None or old.content is None:
        return [_issue("Task", "Tasks are created by the hub for each referral; clients cannot create them")]
    role = ctx.caller.role
    if role == "admin":
        return [_issue("Task", "only the referral's clinic and partner may update its Task")]
    side = "owner" if role == "partner" else "requester"
    if local_ref(ctx, reference_of(old.content.get(side))) != ctx.caller.organization_ref:
        who = (
            "a partner may update only Tasks it owns"
            if role == "partner"
            else ("a clinic may update only the Tasks of its own referrals")
        )
        return [_issue(f"Task.{side}", who)]
    issues = check_task_update(old.content, new, role=role)
    issues.extend(business_status_issues(new))
    if not any(i.severity in ("error", "fatal") for i in issues):
        # Task.lastModified is the hub's to keep (R4: "the date and time of last modification").
        new["lastModified"] = ctx.instant
    return issues


def business_status_issues(task: dict[str, Any]) -> list[Issue]:
    concept = task.get("businessStatus")
    if not isinstance(concept, dict):
        return []
    known = _business_status_codes()
    return [
        Issue(
            code="code-invalid",
            diagnostics=f"{coding.get('code')!r} is not a code of {TASK_BUSINESS_STATUS_SYSTEM}",
            expression=(f"Task.businessStatus.coding[{index}]",),
        )
        for index, coding in enumerate(concept.get("coding") or [])
        if isinstance(coding, dict)
        and coding.get("system") == TASK_BUSINESS_STATUS_SYSTEM
        and coding.get("code") not in known
    ]


def on_task_written(ctx: Context, stored: Stored, old: Stored | None) -> None:
    if old is None or old.content is None or stored.content is None or ctx.caller.role == "admin":
        return
    task = stored.content
    request_id = _focus_id(ctx, task)
    before, after = old.content.get("status"), task.get("status")
    if request_id is not None and before != after:
        follow = service_request_status_for(str(after))
        request = ctx.store.current("ServiceRequest", request_id)
        if follow is not None and request is not None and not request.deleted:
            effects.set_request_status(ctx, request, follow)
        partner = effects.org_id_of(ctx, task.get("owner"))
        # Data minimisation: a partner that declined (or whose Task was stopped) no longer needs the
        # person's data; it keeps its Task. Completed and failed work keeps access until withdrawal.
        if after in ("rejected", "cancelled", "entered-in-error") and partner is not None:
            effects.revoke_partner(ctx, partner, request_id)
    other = "requester" if ctx.caller.role == "partner" else "owner"
    recipient = effects.org_id_of(ctx, task.get(other))
    if recipient is not None:
        effects.queue(
            ctx,
            "task.updated",
            recipient,
            f"Task/{stored.id}",
            {"task": f"Task/{stored.id}", "status": after},
        )


def open_tasks_of(ctx: Context, request_id: str) -> list[Stored]:
    return [t for t in referral_sql.tasks_focusing(ctx.conn, request_id) if effects.is_open(t)]


def _focus_id(ctx: Context, task: dict[str, Any]) -> str | None:
    ref = local_ref(ctx, reference_of(task.get("focus")))
    return ref_id(ref) if ref and ref.startswith("ServiceRequest/") else None


@cache
def _business_status_codes() -> frozenset[str]:
    codes: set[str] = set()

    def walk(concepts: list[dict[str, Any]]) -> None:
        for concept in concepts:
            codes.add(str(concept.get("code")))
            walk(concept.get("concept") or [])

    walk(load_by_url(TASK_BUSINESS_STATUS_SYSTEM).get("concept") or [])
    return frozenset(codes)


def _issue(expression: str, message: str) -> Issue:
    return Issue(code="business-rule", diagnostics=message, expression=(expression,))

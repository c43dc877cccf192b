"""Consent that lapses: a referral whose permitting Consent's period has ended stops by itself.

The partner's access to an opt-in referral's data already lapses with the Consent's period (the grants
carry ``valid_until``, ADR 0006). This sweep, run by the delivery worker, finishes the job the way a
withdrawal does: the open Task is cancelled, the ServiceRequest revoked, the lapsed grants removed, the
partner told (``consent.expired``, ids only) and the decision audited.
"""

from __future__ import annotations

from service.referrals import _effects as effects
from service.referrals.task_rules import open_tasks_of
from service.rest.context import Context
from service.storage import access

EXPIRED_REASON = "consent period ended"
_PREFIX = effects.referral_reason("")


def sweep(ctx: Context) -> int:
    """Cancel the open Tasks of referrals whose consent has lapsed; returns how many were cancelled."""
    cancelled = 0
    for partner, reason in access.lapsed_grants(ctx.conn, _PREFIX, ctx.now):
        request_id = reason[len(_PREFIX) :]
        request = ctx.store.current("ServiceRequest", request_id)
        touched = []
        for task in open_tasks_of(ctx, request_id):
            if effects.org_id_of(ctx, (task.content or {}).get("owner")) != partner:
                continue
            moved = effects.move_task(ctx, task, "cancelled", EXPIRED_REASON)
            if moved is None:
                continue
            cancelled += 1
            touched.append(moved)
            effects.cancel_undelivered(ctx, partner, task.id, EXPIRED_REASON)
            effects.queue(ctx, "consent.expired", partner, f"Task/{task.id}", {"task": f"Task/{task.id}"})
        if request is not None and not request.deleted and touched:
            touched.append(effects.set_request_status(ctx, request, "revoked"))
        effects.revoke_partner(ctx, partner, request_id)
        if touched:
            effects.audit(
                ctx,
                "consent-expiry",
                f"{EXPIRED_REASON}: Organization/{partner} access to ServiceRequest/{request_id} ended",
                touched,
                "update",
            )
    return cancelled

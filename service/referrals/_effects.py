"""The hub's own writes in the referral workflow: Task moves, ServiceRequest status, access, outbox, audit.

These bypass validation and hooks on purpose (they are the hub acting on its own account, inside the
transaction of the request that caused them), so each one keeps the index rows and access rows right.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fhir_profiles import BASE
from service.audit import record
from service.referrals._refs import local_ref, ref_id
from service.referrals.lifecycle import FINAL_STATES, check_task_update
from service.rest.context import Context
from service.search.extract import extract_index_rows
from service.storage import access
from service.storage import outbox as outbox_sql
from service.storage import referrals as referral_sql
from service.storage.resources import Stored

# AuditEvent.subtype for the hub's own referral decisions (extensible in R4; hub-defined codes).
AUDIT_SUBTYPE_SYSTEM = f"{BASE}/CodeSystem/audit-event-subtype"


def referral_reason(service_request_id: str) -> str:
    """The access-row reason for what a partner may see because of one referral."""
    return f"referral:{service_request_id}"


def org_id_of(ctx: Context, element: object) -> str | None:
    """The Organization id of a Reference element that points at ``Organization/<id>``."""
    ref = local_ref(ctx, element.get("reference") if isinstance(element, dict) else None)
    return ref_id(ref) if ref and ref.startswith("Organization/") else None


def canonical(value: object) -> str:
    """JSON with sorted keys, to compare FHIR elements regardless of key order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def rewrite(ctx: Context, old: Stored, content: dict[str, Any]) -> Stored:
    """A server-side update: a new version with fresh index rows, no rules, no hooks."""
    return ctx.store.update(old, content, extract_index_rows(content), now=ctx.now)


def is_open(task: Stored) -> bool:
    return task.content is not None and task.content.get("status") not in FINAL_STATES


def move_task(ctx: Context, task: Stored, status: str, reason: str | None = None) -> Stored | None:
    """Move a Task as the hub (the state machine still applies); None when the move is not legal."""
    assert task.content is not None
    new = dict(task.content)
    new["status"] = status
    if reason is not None:
        new["statusReason"] = {"text": reason}
    new["lastModified"] = ctx.instant
    if check_task_update(task.content, new, role="system"):
        return None
    return rewrite(ctx, task, new)


def set_request_status(ctx: Context, request: Stored, status: str) -> Stored:
    """Set a ServiceRequest's status (no new version when it already has it)."""
    assert request.content is not None
    if request.content.get("status") == status:
        return request
    return rewrite(ctx, request, {**request.content, "status": status})


def revoke_partner(ctx: Context, partner_org_id: str, service_request_id: str) -> list[int]:
    """Remove what the partner could see because of this referral; its Task (an "owner" row) stays."""
    return access.revoke_reason(ctx.conn, partner_org_id, referral_reason(service_request_id))


def grant_partner(
    ctx: Context,
    partner_org_id: str,
    service_request_id: str,
    resources: Sequence[Stored],
    *,
    valid_until: datetime | None = None,
) -> None:
    access.grant_many(
        ctx.conn,
        (s.rid for s in resources),
        partner_org_id,
        referral_reason(service_request_id),
        valid_until=valid_until,
    )


def queue(ctx: Context, kind: str, organization_id: str, focus: str, payload: dict[str, Any]) -> None:
    """Record that something must be sent (ids only: the outbox never holds clinical detail)."""
    referral_sql.add_outbox(
        ctx.conn, kind=kind, organization_id=organization_id, focus=focus, payload=payload, now=ctx.now
    )


def cancel_undelivered(ctx: Context, organization_id: str, task_id: str, reason: str) -> int:
    """Stop what has not yet gone to the recipient about this Task (a claim in flight loses its fence)."""
    return outbox_sql.cancel_pending(
        ctx.conn,
        organization_id=organization_id,
        focus=f"Task/{task_id}",
        kinds=("referral.created", "task.updated"),
        now=ctx.now,
        reason=reason,
    )


def audit(ctx: Context, code: str, description: str, entities: Sequence[Stored], action: str) -> None:
    """An AuditEvent for a decision the hub took, in the same transaction as its effects."""
    event = record.build_event(
        caller=ctx.caller,
        action=action,
        now=ctx.now,
        status=200,
        entities=entities,
        description=description,
        subtype={"system": AUDIT_SUBTYPE_SYSTEM, "code": code},
    )
    record.write_event(ctx.conn, event, ctx.now)

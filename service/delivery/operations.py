"""The delivery operations of the FHIR API: ``Endpoint/{id}/$rotate-secret`` and ``$delivery-status``.

Delivery state is exposed as an operation returning ``Parameters`` (docs/adr/0008-delivery.md): it is the
hub's own bookkeeping about a Task, not a clinical resource, so it is neither written into the Task
(which belongs to the partner's workflow) nor a resource type of its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.access import policy
from service.audit import record
from service.delivery import operators
from service.delivery.secrets import SecretBox
from service.errors import BadRequest, Forbidden
from service.fhir.instant import fhir_instant
from service.referrals.routing import clinic_org_of_task
from service.rest import capability, interactions
from service.rest.context import Context
from service.storage import outbox as outbox_sql
from service.storage.outbox import FINAL_STATES, OutboxRow

ROTATE = "https://wraparound.org.uk/fhir/OperationDefinition/rotate-secret"
STATUS = "https://wraparound.org.uk/fhir/OperationDefinition/delivery-status"
capability.register_operation("Endpoint", "rotate-secret", ROTATE)
capability.register_operation("Task", "delivery-status", STATUS)
STATES = ("pending", *FINAL_STATES)


def rotate_secret(ctx: Context, endpoint_id: str, box: SecretBox, overlap_seconds: int) -> dict[str, Any]:
    if ctx.caller.role != "admin":
        raise Forbidden("Only an administrator may rotate an Endpoint's signing secret")
    policy.authorize(ctx.caller, "Endpoint", "update")
    secret, previous = operators.rotate_webhook_secret(
        ctx.conn, endpoint_id, box, ctx.now, timedelta(seconds=overlap_seconds)
    )
    endpoint = ctx.store.current("Endpoint", endpoint_id)
    record.access(ctx, "operation", [endpoint] if endpoint else [])  # the secret itself is never audited
    parameters: list[dict[str, Any]] = [{"name": "secret", "valueString": secret}]
    if previous is not None:
        parameters.append({"name": "previousExpires", "valueInstant": fhir_instant(previous)})
    return {"resourceType": "Parameters", "parameter": parameters}


def task_deliveries(ctx: Context, task_id: str) -> dict[str, Any]:
    """The deliveries about one Task the caller may see (a partner: only those addressed to it)."""
    policy.authorize(ctx.caller, "Task", "read")
    task = interactions.load_visible(ctx, "Task", task_id)
    rows = outbox_sql.listing(ctx.conn, focus=f"Task/{task.id}", limit=200)
    own = ctx.caller.organization_id
    requester = ctx.caller.role == "clinic" and clinic_org_of_task(task.content or {}) == own
    if ctx.caller.role != "admin" and not requester:
        # A partner (or any other reader) sees only what was addressed to it.
        rows = [r for r in rows if r.organization_id == ctx.caller.organization_id]
    record.access(ctx, "operation", [task])
    return _parameters(rows)


def hub_deliveries(ctx: Context, state: str | None, limit: int = 200) -> dict[str, Any]:
    """Deliveries across the hub (dead letters, the backlog): administrators only."""
    if ctx.caller.role != "admin":
        raise Forbidden("Only an administrator may list the hub's deliveries")
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    record.access(ctx, "operation", [], query=f"state={state}" if state else None)
    return _parameters(outbox_sql.listing(ctx.conn, state=state, limit=limit))


def _parameters(rows: list[OutboxRow]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    for row in rows:
        parts: list[dict[str, Any]] = [
            {"name": "id", "valueString": str(row.id)},
            {"name": "event", "valueCode": row.kind},
            {"name": "recipient", "valueReference": {"reference": f"Organization/{row.organization_id}"}},
            {"name": "task", "valueReference": {"reference": row.focus}},
            {"name": "state", "valueCode": row.state},
            {"name": "attempts", "valueInteger": row.attempts},
            {"name": "created", "valueInstant": fhir_instant(row.created_at)},
        ]
        if row.finished_at is not None:
            parts.append({"name": "finished", "valueInstant": fhir_instant(row.finished_at)})
        elif row.state == "pending":
            parts.append({"name": "nextAttempt", "valueInstant": fhir_instant(row.due_at)})
        if row.adapter:
            parts.append({"name": "adapter", "valueCode": row.adapter})
        if row.last_status is not None:
            parts.append({"name": "lastStatus", "valueInteger": row.last_status})
        if row.last_error:
            parts.append({"name": "lastError", "valueString": row.last_error})
        out.append({"name": "delivery", "part": parts})
    return {"resourceType": "Parameters", **({"parameter": out} if out else {})}

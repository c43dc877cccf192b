"""The referral Task state machine: who may move a Task between which statuses, and what else they may touch.

Follows the FHIR Task state machine (http://hl7.org/fhir/R4/task.html#statemachine), narrowed to the
referral workflow of the HL7 Gravity SDOH Clinical Care IG: the hub creates the Task as ``requested``, the
partner (the Task owner) accepts or rejects and then works it, the clinic (the requester) may cancel.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from service.errors import Issue

Role = Literal["clinic", "partner", "system"]

# http://hl7.org/fhir/R4/valueset-task-status.html
TASK_STATUSES: frozenset[str] = frozenset(
    {
        "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
        "in-progress", "on-hold", "failed", "completed", "entered-in-error",
    }
)  # fmt: skip
FINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"})

# Moves the partner (the Task owner) makes. draft/received/ready are valid R4 codes the hub never uses:
# Tasks are created `requested`, and accepting is a single step (no `received` acknowledgement).
_PARTNER_MOVES: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"in-progress", "on-hold", "completed", "failed"}),
    "in-progress": frozenset({"on-hold", "completed", "failed"}),
    "on-hold": frozenset({"in-progress", "completed", "failed"}),
}

# Fields each party may change. meta/id/text/lastModified are set by the server and never compared.
_SERVER_FIELDS = frozenset({"meta", "id", "text", "lastModified"})
_PARTNER_FIELDS = frozenset({"status", "businessStatus", "statusReason", "output", "note"})
_CLINIC_FIELDS = frozenset({"status", "statusReason", "note"})

# Status changes that must say why: the clinic and the patient need to know why a partner declined, and the
# partner why a referral was withdrawn. The hub's own (system) cancellations carry no reason requirement.
_REASON_REQUIRED: dict[str, frozenset[Role]] = {
    "rejected": frozenset({"partner"}),
    "cancelled": frozenset({"clinic"}),
}


def check_task_update(old: dict[str, Any], new: dict[str, Any], *, role: Role) -> list[Issue]:
    """Issues that make ``new`` an unacceptable update of ``old`` by ``role`` (empty list: acceptable).

    - A no-op status (same as before) is fine; field restrictions still apply.
    - ``entered-in-error`` may be set from any status by the clinic or the partner: we do not try to work out
      which side made the error (the record keeps who did it, through the audit trail).
    - ``role="system"`` is the hub itself (e.g. cancelling open Tasks when consent is withdrawn): it still
      follows the state machine but has no role, field or statusReason restrictions.
    """
    old_status = old.get("status")
    new_status = new.get("status")
    if not isinstance(new_status, str) or new_status not in TASK_STATUSES:
        return [
            Issue(
                code="code-invalid" if isinstance(new_status, str) else "required",
                diagnostics=f"Task status {new_status!r} is not a FHIR R4 Task status",
                expression=("Task.status",),
            )
        ]
    issues: list[Issue] = []
    if new_status != old_status:
        issues.extend(_transition_issues(old_status, new_status, new, role))
    issues.extend(_field_issues(old, new, role))
    return issues


def service_request_status_for(task_status: str) -> str | None:
    """The ServiceRequest status a referral Task's status implies, or None to leave the ServiceRequest alone.

    Rejected and failed Tasks leave the ServiceRequest active: the clinic may route it elsewhere.
    """
    return {
        "completed": "completed",
        "cancelled": "revoked",
        "entered-in-error": "entered-in-error",
    }.get(task_status)


def _transition_issues(old_status: object, new_status: str, new: dict[str, Any], role: Role) -> list[Issue]:
    who = _allowed_movers(old_status, new_status)
    if not who:
        return [
            Issue(
                code="business-rule",
                diagnostics=f"Task status cannot move from {old_status!r} to {new_status!r}",
                expression=("Task.status",),
            )
        ]
    if role != "system" and role not in who:
        movers = " or ".join(f"the {r}" for r in sorted(who))
        return [
            Issue(
                code="business-rule",
                diagnostics=(f"only {movers} may move a referral Task from {old_status!r} to {new_status!r}"),
                expression=("Task.status",),
            )
        ]
    if role in _REASON_REQUIRED.get(new_status, frozenset()) and not _has_reason(new.get("statusReason")):
        return [
            Issue(
                code="business-rule",
                diagnostics=f"a Task moving to {new_status!r} needs a statusReason (text or a coding)",
                expression=("Task.statusReason",),
            )
        ]
    return []


def _allowed_movers(old_status: object, new_status: str) -> frozenset[Role]:
    """The roles (besides the system) that may make this legal move; empty when the move is illegal."""
    if not isinstance(old_status, str) or old_status not in TASK_STATUSES:
        return frozenset()
    if new_status == "entered-in-error":
        return frozenset({"clinic", "partner"})
    if old_status in FINAL_STATES:
        return frozenset()
    if new_status == "cancelled":
        return frozenset({"clinic"})
    if new_status in _PARTNER_MOVES.get(old_status, frozenset()):
        return frozenset({"partner"})
    return frozenset()


def _has_reason(reason: object) -> bool:
    if not isinstance(reason, dict):
        return False
    text = reason.get("text")
    codings = reason.get("coding")
    return (isinstance(text, str) and bool(text.strip())) or (
        isinstance(codings, list) and any(isinstance(c, dict) and c.get("code") for c in codings)
    )


def _field_issues(old: dict[str, Any], new: dict[str, Any], role: Role) -> list[Issue]:
    if role == "system":
        return []
    if role == "partner":
        allowed = _PARTNER_FIELDS
        described = (
            "a partner may change only status, businessStatus, statusReason, output and note of its Tasks"
        )
    else:
        allowed = _CLINIC_FIELDS
        described = "a clinic may change only status, statusReason and note of a Task"
    compared = (old.keys() | new.keys()) - _SERVER_FIELDS - allowed
    return [
        Issue(
            code="business-rule",
            diagnostics=f"{described}; {field!r} changed",
            expression=(f"Task.{field}",),
        )
        for field in sorted(compared)
        if _canonical(old.get(field)) != _canonical(new.get(field))
    ]


def _canonical(value: object) -> str:
    # Compare as JSON so key order in objects does not count as a change.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))

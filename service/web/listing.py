"""The list pages: a partner's inbox (its Tasks) and a clinic's tracker (its referrals' Tasks).

One FHIR search as the person (``rest.search``: policy, visibility, minimisation and one audit event),
``Task?owner=`` for a partner or ``Task?requester=`` for a clinic, with each Task's ServiceRequest, Patient
and the ServiceRequest's supporting information included, exactly as an API client would ask for them.
Directory names (services, organisations) are public data read from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from service.access.policy import PUBLIC_READ
from service.rest import search
from service.rest.context import Context
from service.web import labels
from service.web.assessment_view import URGENCY_RANK, urgency
from service.web.working_days import Waiting, waiting

PAGE = 200


@dataclass(frozen=True)
class Row:
    task_id: str
    received: date | None
    person: str
    service: str
    partner: str
    status: str
    business_status: str
    urgency: str | None
    waiting: Waiting
    days_open: int

    @property
    def status_label(self) -> str:
        return labels.STATUS.get(self.status, self.status)

    @property
    def urgency_label(self) -> str:
        return labels.URGENCY.get(self.urgency or "", "Not stated")

    @property
    def is_open(self) -> bool:
        return self.status in labels.OPEN


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def directory_name(ctx: Context, reference: Any, cache: dict[str, str]) -> str:
    ref = str((reference or {}).get("reference") or "") if isinstance(reference, dict) else ""
    rtype, _, rid = ref.partition("/")
    if ref not in cache:
        stored = ctx.store.current(rtype, rid) if rtype in PUBLIC_READ and rid else None
        content = stored.content if stored is not None else None
        display = (reference or {}).get("display") if isinstance(reference, dict) else None
        cache[ref] = str((content or {}).get("name") or display or "Unknown")
    return cache[ref]


def task_rows(
    ctx: Context, *, target_days: int, status: str | None = None, today: date | None = None
) -> list[Row]:
    side = "owner" if ctx.caller.role == "partner" else "requester"
    params = [
        (side, ctx.caller.organization_ref),
        ("_include", "Task:focus"),
        ("_include", "Task:patient"),
        ("_include:iterate", "ServiceRequest:supporting-info"),
        ("_sort", "-authored-on"),
        ("_count", str(PAGE)),
    ]
    if status:
        params.append(("status", status))
    bundle = search.search(ctx, "Task", params)
    matches: list[dict[str, Any]] = []
    included: dict[str, dict[str, Any]] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if (entry.get("search") or {}).get("mode") == "include":
            included[f"{resource.get('resourceType')}/{resource.get('id')}"] = resource
        elif resource.get("resourceType") == "Task":
            matches.append(resource)
    names: dict[str, str] = {}
    today = today or ctx.now.date()
    return [_row(ctx, task, included, names, target_days, today) for task in matches]


def _row(
    ctx: Context,
    task: dict[str, Any],
    included: dict[str, dict[str, Any]],
    names: dict[str, str],
    target_days: int,
    today: date,
) -> Row:
    request = included.get(str((task.get("focus") or {}).get("reference")))
    patient = included.get(str((task.get("for") or {}).get("reference")))
    assessment = None
    for info in (request or {}).get("supportingInfo") or []:
        found = included.get(str(info.get("reference")))
        if found is not None and found.get("resourceType") == "QuestionnaireResponse":
            assessment = found
    received = _day(task.get("authoredOn"))
    status = str(task.get("status"))
    business = labels.business_code(task)
    performer = ((request or {}).get("performer") or [None])[0]
    ended = _day(task.get("lastModified")) if status not in labels.OPEN else None
    return Row(
        task_id=str(task["id"]),
        received=received,
        person=labels.human_name(patient) if patient else "No longer shared",
        service=directory_name(ctx, performer, names) if performer else "Not stated",
        partner=directory_name(ctx, task.get("owner"), names),
        status=status,
        business_status=labels.concept_text(task.get("businessStatus")),
        urgency=urgency(assessment) or _priority_urgency(request),
        waiting=waiting(received or today, today, target_days, status, business),
        days_open=((ended or today) - received).days if received else 0,
    )


def _priority_urgency(request: dict[str, Any] | None) -> str | None:
    # ServiceRequest.priority (routine | urgent | asap | stat) when no assessment answer says.
    priority = (request or {}).get("priority")
    return {"routine": "not-urgent", "urgent": "soon", "asap": "now", "stat": "now"}.get(str(priority))


def inbox_order(rows: list[Row]) -> list[Row]:
    """Open referrals first, the most urgent first, then the newest."""

    def key(row: Row) -> tuple[int, int, float]:
        stamp = datetime.combine(row.received, datetime.min.time()).timestamp() if row.received else 0.0
        return (0 if row.is_open else 1, URGENCY_RANK.get(row.urgency or "", 3), -stamp)

    return sorted(rows, key=key)

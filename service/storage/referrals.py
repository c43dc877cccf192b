"""SQL for the referral workflow: the Consents, referrals and Tasks of one patient, and outbox rows.

These lookups run on the hub's own account (consent withdrawal, referral routing), so they take the
organisation whose view they stand for explicitly instead of a caller; all go through the index tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import ColumnElement, Connection, insert, select

from service.storage.access import visible_condition
from service.storage.resources import COLUMNS, R, Stored, row_to_stored
from service.storage.tables import IdxReference, IdxToken, Outbox

REF = IdxReference.__table__  # type: ignore[attr-defined]
TOKEN = IdxToken.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


def _referencing(resource_type: str, param: str, target_type: str, target_id: str) -> Any:
    return (
        select(REF.c.rid)
        .where(
            REF.c.resource_type == resource_type,
            REF.c.param == param,
            REF.c.target_type == target_type,
            REF.c.target_id == target_id,
        )
        .scalar_subquery()
    )


def _current_referencing(
    conn: Connection,
    resource_type: str,
    param: str,
    target: tuple[str, str],
    *extra: ColumnElement[bool],
) -> list[Stored]:
    """Current resources of ``resource_type`` whose ``param`` references ``target`` (type, id)."""
    rows = conn.execute(
        select(*COLUMNS)
        .where(
            R.c.resource_type == resource_type,
            R.c.deleted.is_(False),
            R.c.rid.in_(_referencing(resource_type, param, *target)),
            *extra,
        )
        .order_by(R.c.rid)
    ).all()
    return [row_to_stored(r) for r in rows]


def active_consents(conn: Connection, patient_id: str, organization_id: str) -> list[Stored]:
    """Active Consents about ``Patient/patient_id`` that ``organization_id`` may see.

    The SQL form of ``Consent?patient=Patient/<id>&status=active`` with that organisation's visibility.
    """
    active = select(TOKEN.c.rid).where(
        TOKEN.c.resource_type == "Consent", TOKEN.c.param == "status", TOKEN.c.code == "active"
    )
    return _current_referencing(
        conn,
        "Consent",
        "patient",
        ("Patient", patient_id),
        R.c.rid.in_(active.scalar_subquery()),
        visible_condition(R.c.rid, organization_id),
    )


def completed_responses(conn: Connection, patient_id: str, organization_id: str) -> list[Stored]:
    """Completed or amended QuestionnaireResponses about ``Patient/patient_id`` that ``organization_id``
    may see (``QuestionnaireResponse?subject=Patient/<id>&status=completed,amended``, that org's view)."""
    finished = select(TOKEN.c.rid).where(
        TOKEN.c.resource_type == "QuestionnaireResponse",
        TOKEN.c.param == "status",
        TOKEN.c.code.in_(("completed", "amended")),
    )
    return _current_referencing(
        conn,
        "QuestionnaireResponse",
        "subject",
        ("Patient", patient_id),
        R.c.rid.in_(finished.scalar_subquery()),
        visible_condition(R.c.rid, organization_id),
    )


def services_of(conn: Connection, organization_id: str) -> list[Stored]:
    """The current HealthcareServices provided by ``Organization/organization_id``."""
    return _current_referencing(conn, "HealthcareService", "organization", ("Organization", organization_id))


def service_requests_for_patient(conn: Connection, patient_id: str) -> list[Stored]:
    """Every current ServiceRequest whose subject is ``Patient/patient_id``."""
    return _current_referencing(conn, "ServiceRequest", "subject", ("Patient", patient_id))


def tasks_focusing(conn: Connection, service_request_id: str) -> list[Stored]:
    """The current Tasks whose focus is ``ServiceRequest/service_request_id`` (Task?focus=...)."""
    return _current_referencing(conn, "Task", "focus", ("ServiceRequest", service_request_id))


def add_outbox(
    conn: Connection,
    *,
    kind: str,
    organization_id: str,
    focus: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """Queue something that must be sent, in the caller's transaction (delivery workers pick it up)."""
    new_id: int = conn.execute(
        insert(OUTBOX)
        .values(
            kind=kind,
            organization_id=organization_id,
            focus=focus,
            payload=payload,
            state="pending",
            attempts=0,
            message_id=f"msg_{uuid4().hex}",
            created_at=now,
            due_at=now,
        )
        .returning(OUTBOX.c.id)
    ).scalar_one()
    return new_id


def outbox_for(conn: Connection, focus: str) -> list[dict[str, Any]]:
    """The outbox rows about one resource, oldest first (for operators and tests)."""
    rows = conn.execute(select(OUTBOX).where(OUTBOX.c.focus == focus).order_by(OUTBOX.c.id)).all()
    return [dict(r._mapping) for r in rows]

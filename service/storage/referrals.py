"""SQL for the referral workflow: the Consents, referrals and Tasks of one patient, and outbox rows.

These lookups run on the hub's own account (consent withdrawal, referral routing), so they take the
organisation whose view they stand for explicitly instead of a caller; all go through the index tables.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import uuid4

from sqlalchemy import Connection, String, bindparam, insert, or_, select

from service.storage.access import visible_condition
from service.storage.driverselect import DriverSelect
from service.storage.resources import COLUMNS, R, Stored, row_to_stored
from service.storage.tables import IdxReference, IdxToken, Outbox

REF = IdxReference.__table__  # type: ignore[attr-defined]
TOKEN = IdxToken.__table__  # type: ignore[attr-defined]
OUTBOX = Outbox.__table__  # type: ignore[attr-defined]


def _referencing(resource_type: str, param: str, target_type: str) -> Any:
    return (
        select(REF.c.rid)
        .where(
            REF.c.resource_type == resource_type,
            REF.c.param == param,
            REF.c.target_type == target_type,
            REF.c.target_id == bindparam("target_id"),
        )
        .scalar_subquery()
    )


@lru_cache(maxsize=64)
def _statement(
    resource_type: str, param: str, target_type: str, status: tuple[str, ...] = ()
) -> DriverSelect:
    """Current resources of ``resource_type`` whose ``param`` references ``target_type``/:target_id, with
    one of ``status`` and visible to :org when ``status`` is given. Built once per shape: building and
    cache-keying a statement per call cost more than running it (a referral makes several)."""
    where = [
        R.c.resource_type == resource_type,
        R.c.deleted.is_(False),
        R.c.rid.in_(_referencing(resource_type, param, target_type)),
    ]
    if status:
        having = select(TOKEN.c.rid).where(
            TOKEN.c.resource_type == resource_type,
            TOKEN.c.param == "status",
            or_(*(TOKEN.c.code == code for code in status)),
        )
        where += [
            R.c.rid.in_(having.scalar_subquery()),
            visible_condition(R.c.rid, bindparam("org", type_=String())),
        ]
    # On the driver's cursor (storage/driverselect.py): a referral makes several of these lookups.
    return DriverSelect(select(*COLUMNS).where(*where).order_by(R.c.rid))


def _current_referencing(conn: Connection, statement: DriverSelect, **params: str) -> list[Stored]:
    return [row_to_stored(row) for row in statement.all(conn, params)]


def active_consents(conn: Connection, patient_id: str, organization_id: str) -> list[Stored]:
    """Active Consents about ``Patient/patient_id`` that ``organization_id`` may see.

    The SQL form of ``Consent?patient=Patient/<id>&status=active`` with that organisation's visibility.
    """
    statement = _statement("Consent", "patient", "Patient", ("active",))
    return _current_referencing(conn, statement, target_id=patient_id, org=organization_id)


def completed_responses(conn: Connection, patient_id: str, organization_id: str) -> list[Stored]:
    """Completed or amended QuestionnaireResponses about ``Patient/patient_id`` that ``organization_id``
    may see (``QuestionnaireResponse?subject=Patient/<id>&status=completed,amended``, that org's view)."""
    statement = _statement("QuestionnaireResponse", "subject", "Patient", ("completed", "amended"))
    return _current_referencing(conn, statement, target_id=patient_id, org=organization_id)


def services_of(conn: Connection, organization_id: str) -> list[Stored]:
    """The current HealthcareServices provided by ``Organization/organization_id``."""
    statement = _statement("HealthcareService", "organization", "Organization")
    return _current_referencing(conn, statement, target_id=organization_id)


def service_requests_for_patient(conn: Connection, patient_id: str) -> list[Stored]:
    """Every current ServiceRequest whose subject is ``Patient/patient_id``."""
    return _current_referencing(
        conn, _statement("ServiceRequest", "subject", "Patient"), target_id=patient_id
    )


def tasks_focusing(conn: Connection, service_request_id: str) -> list[Stored]:
    """The current Tasks whose focus is ``ServiceRequest/service_request_id`` (Task?focus=...)."""
    statement = _statement("Task", "focus", "ServiceRequest")
    return _current_referencing(conn, statement, target_id=service_request_id)


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
        _ADD_OUTBOX,
        {
            "kind": kind,
            "organization_id": organization_id,
            "focus": focus,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "message_id": f"msg_{uuid4().hex}",
            "created_at": now,
            "due_at": now,
        },
    ).scalar_one()
    return new_id


_ADD_OUTBOX = insert(OUTBOX).returning(OUTBOX.c.id)


def outbox_for(conn: Connection, focus: str) -> list[dict[str, Any]]:
    """The outbox rows about one resource, oldest first (for operators and tests)."""
    rows = conn.execute(select(OUTBOX).where(OUTBOX.c.focus == focus).order_by(OUTBOX.c.id)).all()
    return [dict(r._mapping) for r in rows]

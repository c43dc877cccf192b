"""SQL for the ``resource_access`` table: which organisations may see which resources."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.storage import driver
from service.storage.bulk import BulkInsert
from service.storage.driverselect import DriverSelect
from service.storage.tables import IdxReference, IdxToken, Resource, ResourceAccess, UtcDateTime

A = ResourceAccess.__table__  # type: ignore[attr-defined]
REFERRAL_PREFIX = "referral:"  # reason of a partner's grant: "referral:<ServiceRequest id>"


def _upsert(statement: Any) -> Any:
    # One statement: a repeated grant for the same reason only moves its expiry (built once).
    return statement.on_conflict_do_update(
        index_elements=["rid", "organization_id", "reason"],
        set_={"valid_until": statement.excluded.valid_until},
    )


_GRANT = {"postgresql": _upsert(pg_insert(A)), "sqlite": _upsert(sqlite_insert(A))}


def _now() -> datetime:
    return datetime.now(UTC)


def _current(organization_id: Any) -> ColumnElement[bool]:
    """The organisation's grants that have not lapsed.

    "Now" is bound at execution time (``callable_``), so statements built once stay correct;
    SQLite's CURRENT_TIMESTAMP would only have whole seconds.
    """
    now = bindparam("access_now", callable_=_now, type_=UtcDateTime(), unique=True)
    return and_(A.c.organization_id == organization_id, or_(A.c.valid_until.is_(None), A.c.valid_until > now))


def grant(
    conn: Connection, rid: int, organization_id: str, reason: str, *, valid_until: datetime | None = None
) -> None:
    conn.execute(
        _GRANT[conn.dialect.name],
        {"rid": rid, "organization_id": organization_id, "reason": reason, "valid_until": valid_until},
    )


# A resource's first grants, written with its create's other rows (ResourceStore.create(grants=...)).
_FIRST_GRANTS = BulkInsert(A, ("rid", "organization_id", "reason", "valid_until"))


def first_grants(conn: Connection, rid: int, grants: Iterable[tuple[str, str]]) -> list[driver.Statement]:
    """Statements that grant a resource created in this transaction to each (organisation, reason),
    without expiry, for ``driver.run_all``.

    A plain multi-row insert: a new rid has no grant to extend, so ``grant``'s upsert is not needed.
    Sent with the create's history and index rows, an author's grant costs no round trip of its own
    (on PostgreSQL it was a fifth of a create's time) and no Core execution."""
    unique = dict.fromkeys(grants)  # a repeated (organisation, reason) would break the primary key
    rows = [_FIRST_GRANTS.process(conn.dialect, (rid, org, reason, None)) for org, reason in unique]
    return _FIRST_GRANTS.statements(conn, rows) if rows else []


def revoke_reason(conn: Connection, organization_id: str, reason: str) -> list[int]:
    """Remove every grant made to an organisation for one reason; returns the rids affected."""
    rids = [
        r[0]
        for r in conn.execute(
            select(A.c.rid).where(A.c.organization_id == organization_id, A.c.reason == reason)
        ).all()
    ]
    conn.execute(delete(A).where(A.c.organization_id == organization_id, A.c.reason == reason))
    return rids


# Built once and run on the driver's cursor: every write checks it, and building and cache-keying it
# per call cost more than running it (0.3 ms a referral).
_HAS_ACCESS = DriverSelect(
    select(A.c.rid).where(A.c.rid == bindparam("a_rid"), _current(bindparam("a_org"))).limit(1)
)


def has_access(conn: Connection, rid: int, organization_id: str) -> bool:
    return _HAS_ACCESS.first(conn, {"a_rid": rid, "a_org": organization_id}) is not None


def organizations_with_access(conn: Connection, rid: int) -> set[str]:
    return {r[0] for r in conn.execute(select(A.c.organization_id).where(A.c.rid == rid)).all()}


def visible_condition(
    rid_column: ColumnElement[int], organization_id: str | BindParameter[str]
) -> ColumnElement[bool]:
    # Uncorrelated IN: served from ix_resource_access_org (organization_id, rid).
    return rid_column.in_(select(A.c.rid).where(_current(organization_id)))


def grant_many(
    conn: Connection,
    rids: Iterable[int],
    organization_id: str,
    reason: str,
    *,
    valid_until: datetime | None = None,
) -> None:
    params = [
        {"rid": rid, "organization_id": organization_id, "reason": reason, "valid_until": valid_until}
        for rid in rids
    ]
    if params:  # one executemany, not a statement per rid
        conn.execute(_GRANT[conn.dialect.name], params)


def rids_with_access(conn: Connection, rids: list[int], organization_id: str) -> set[int]:
    if not rids:
        return set()
    rows = conn.execute(select(A.c.rid).where(A.c.rid.in_(rids), _current(organization_id)).distinct()).all()
    return {r[0] for r in rows}


def granted_column(
    rid_column: ColumnElement[int], organization_id: BindParameter[str]
) -> ColumnElement[bool]:
    """Whether one row's organisation has access: a correlated EXISTS on the primary key.

    For a single row this is one index probe; the IN form of ``visible_condition`` suits
    searches but would hash every row the organisation can see.
    """
    return exists().where(A.c.rid == rid_column, _current(organization_id))


def lapsed_grants(conn: Connection, reason_prefix: str, now: datetime) -> list[tuple[str, str]]:
    """(organization, reason) pairs whose grants for ``reason_prefix…`` have lapsed by ``now``."""
    rows = conn.execute(
        select(A.c.organization_id, A.c.reason)
        .where(A.c.reason.startswith(reason_prefix), A.c.valid_until.is_not(None), A.c.valid_until <= now)
        .distinct()
    ).all()
    return [(r[0], r[1]) for r in rows]


def grant_services(
    conn: Connection, rids: list[int], organization_id: str, category_system: str
) -> list[tuple[int, str, str | None]]:
    """Why the organisation may see each resource: (rid, reason, service category code) rows.

    One query for a page of resources: each current grant, and for a ``referral:<id>`` grant the
    category codes (in ``category_system``) of the HealthcareService that referral's performer names,
    through the ServiceRequest ``performer`` and HealthcareService ``service-category`` index rows.
    The code is None when the grant is not a referral's, or the referral's performer is an
    Organization, or its service has no category in that system.
    """
    if not rids:
        return []
    request = Resource.__table__.alias("sr")  # type: ignore[attr-defined]
    service = Resource.__table__.alias("hs")  # type: ignore[attr-defined]
    performer = IdxReference.__table__.alias("performer")  # type: ignore[attr-defined]
    category = IdxToken.__table__.alias("category")  # type: ignore[attr-defined]
    joined = (
        A.outerjoin(
            request,
            and_(
                A.c.reason.startswith(REFERRAL_PREFIX),
                request.c.resource_type == "ServiceRequest",
                request.c.id == func.substr(A.c.reason, len(REFERRAL_PREFIX) + 1),
            ),
        )
        .outerjoin(
            performer,
            and_(
                performer.c.rid == request.c.rid,
                performer.c.resource_type == "ServiceRequest",
                performer.c.param == "performer",
                performer.c.target_type == "HealthcareService",
            ),
        )
        .outerjoin(
            service,
            and_(
                service.c.resource_type == "HealthcareService",
                service.c.id == performer.c.target_id,
                service.c.deleted.is_(False),
            ),
        )
        .outerjoin(
            category,
            and_(
                category.c.rid == service.c.rid,
                category.c.resource_type == "HealthcareService",
                category.c.param == "service-category",
                category.c.system == category_system,
            ),
        )
    )
    rows = conn.execute(
        select(A.c.rid, A.c.reason, category.c.code)
        .select_from(joined)
        .where(A.c.rid.in_(rids), _current(organization_id))
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]

"""SQL for the ``resource_access`` table: which organisations may see which resources."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BindParameter, ColumnElement, Connection, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.storage.tables import ResourceAccess

A = ResourceAccess.__table__  # type: ignore[attr-defined]


# One statement, idempotent: INSERT ... ON CONFLICT DO NOTHING on the primary key (built once).
_GRANT = {
    "postgresql": pg_insert(A).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(A).on_conflict_do_nothing(),
}


def grant(conn: Connection, rid: int, organization_id: str, reason: str) -> None:
    conn.execute(
        _GRANT[conn.dialect.name], {"rid": rid, "organization_id": organization_id, "reason": reason}
    )


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


def has_access(conn: Connection, rid: int, organization_id: str) -> bool:
    return (
        conn.execute(
            select(A.c.rid).where(A.c.rid == rid, A.c.organization_id == organization_id).limit(1)
        ).first()
        is not None
    )


def organizations_with_access(conn: Connection, rid: int) -> set[str]:
    return {r[0] for r in conn.execute(select(A.c.organization_id).where(A.c.rid == rid)).all()}


def visible_condition(rid_column: ColumnElement[int], organization_id: str) -> ColumnElement[bool]:
    # Uncorrelated IN: served from ix_resource_access_org (organization_id, rid).
    return rid_column.in_(select(A.c.rid).where(A.c.organization_id == organization_id))


def grant_many(conn: Connection, rids: Iterable[int], organization_id: str, reason: str) -> None:
    for rid in rids:
        grant(conn, rid, organization_id, reason)


def rids_with_access(conn: Connection, rids: list[int], organization_id: str) -> set[int]:
    if not rids:
        return set()
    rows = conn.execute(
        select(A.c.rid).where(A.c.rid.in_(rids), A.c.organization_id == organization_id).distinct()
    ).all()
    return {r[0] for r in rows}


def granted_column(
    rid_column: ColumnElement[int], organization_id: BindParameter[str]
) -> ColumnElement[bool]:
    """Whether one row's organisation has access: a correlated EXISTS on the primary key.

    For a single row this is one index probe; the IN form of ``visible_condition`` suits
    searches but would hash every row the organisation can see.
    """
    return exists().where(A.c.rid == rid_column, A.c.organization_id == organization_id)

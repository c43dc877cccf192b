"""Executing a compiled search: keyset paging, totals and include lookups.

Paging is by keyset over the sort keys plus ``rid`` (never OFFSET), so a page link
stays correct while other data changes: no unchanged entry is skipped or repeated.
NULL sort values sort last in either direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, or_, select

from service.storage.resources import COLUMNS, R, Stored, row_to_stored
from service.storage.tables import IdxReference

REF = IdxReference.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SortKey:
    expr: ColumnElement[Any]
    descending: bool


def _after(key: SortKey, value: Any, *, nulls_last: bool) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in this key's order."""
    if value is None:
        return false() if nulls_last else key.expr.is_not(None)
    cmp = key.expr < value if key.descending else key.expr > value
    return or_(cmp, key.expr.is_(None)) if nulls_last else cmp


def _equal(key: SortKey, value: Any) -> ColumnElement[bool]:
    return key.expr.is_(None) if value is None else key.expr == value


def _keyset(keys: Sequence[SortKey], values: Sequence[Any], *, nulls_last: bool) -> ColumnElement[bool]:
    clauses = []
    for i, key in enumerate(keys):
        prefix = [_equal(keys[j], values[j]) for j in range(i)]
        clauses.append(and_(*prefix, _after(key, values[i], nulls_last=nulls_last)))
    return or_(*clauses)


def _order(keys: Sequence[SortKey], *, nulls_last: bool) -> list[Any]:
    order: list[Any] = []
    for key in keys:
        if key.expr is not R.c.rid:  # rid is never NULL; keep ORDER BY rid index-friendly
            null_flag = key.expr.is_(None)
            order.append(null_flag if nulls_last else null_flag.desc())
        order.append(key.expr.desc() if key.descending else key.expr.asc())
    return order


def page(
    conn: Connection,
    resource_type: str,
    conditions: Sequence[ColumnElement[bool]],
    sort: Sequence[tuple[ColumnElement[Any], bool]],
    *,
    limit: int,
    after: Sequence[Any] | None = None,
    before: Sequence[Any] | None = None,
) -> tuple[list[Stored], list[list[Any]]]:
    """One page of current, non-deleted matches, with each row's sort-key values.

    ``after``/``before`` are the sort values (ending with rid) of the row the page
    starts after or ends before. Returns up to ``limit`` rows in the requested order.
    """
    keys = [SortKey(expr, desc) for expr, desc in sort] + [SortKey(R.c.rid, False)]
    backwards = before is not None
    keys_q = [SortKey(k.expr, not k.descending) for k in keys] if backwards else keys
    nulls_last = not backwards
    where = [R.c.resource_type == resource_type, R.c.deleted == false(), *conditions]
    if after is not None:
        where.append(_keyset(keys_q, after, nulls_last=nulls_last))
    if before is not None:
        where.append(_keyset(keys_q, before, nulls_last=nulls_last))
    stmt = (
        select(*COLUMNS, *[k.expr.label(f"sk{i}") for i, k in enumerate(keys)])
        .where(*where)
        .order_by(*_order(keys_q, nulls_last=nulls_last))
        .limit(limit)
    )
    rows = conn.execute(stmt).all()
    if backwards:
        rows = list(reversed(rows))
    stored = [row_to_stored(r) for r in rows]
    sort_values = [[getattr(r, f"sk{i}") for i in range(len(keys))] for r in rows]
    return stored, sort_values


def count(conn: Connection, resource_type: str, conditions: Sequence[ColumnElement[bool]]) -> int:
    stmt = (
        select(func.count())
        .select_from(R)
        .where(R.c.resource_type == resource_type, R.c.deleted == false(), *conditions)
    )
    return int(conn.execute(stmt).scalar_one())


def referenced(
    conn: Connection, rids: Sequence[int], param: str, target_type: str | None
) -> list[tuple[str, str]]:
    """(type, id) pairs that the given resources reference through ``param``."""
    if not rids:
        return []
    cond = [REF.c.rid.in_(list(rids)), REF.c.param == param, REF.c.target_id.is_not(None)]
    if target_type:
        cond.append(REF.c.target_type == target_type)
    rows = conn.execute(select(REF.c.target_type, REF.c.target_id).where(*cond).distinct()).all()
    return [(r[0], r[1]) for r in rows if r[0]]


def by_type_ids(conn: Connection, pairs: Sequence[tuple[str, str]]) -> list[Stored]:
    if not pairs:
        return []
    by_type: dict[str, list[str]] = {}
    for rtype, rid in pairs:
        by_type.setdefault(rtype, []).append(rid)
    clauses = [and_(R.c.resource_type == t, R.c.id.in_(ids)) for t, ids in by_type.items()]
    rows = conn.execute(select(*COLUMNS).where(or_(*clauses), R.c.deleted == false())).all()
    return [row_to_stored(r) for r in rows]


def referencing(
    conn: Connection,
    source_type: str,
    param: str,
    targets: Sequence[tuple[str, str]],
    extra: Sequence[ColumnElement[bool]] = (),
) -> list[Stored]:
    """Current resources of ``source_type`` whose ``param`` points at any of the targets."""
    if not targets:
        return []
    match = or_(*[and_(REF.c.target_type == t, REF.c.target_id == i) for t, i in targets])
    sub = select(REF.c.rid).where(REF.c.resource_type == source_type, REF.c.param == param, match)
    rows = conn.execute(
        select(*COLUMNS).where(R.c.rid.in_(sub), R.c.deleted == false(), *extra).order_by(R.c.rid)
    ).all()
    return [row_to_stored(r) for r in rows]

"""Executing a compiled search: keyset paging, totals and include lookups.

Paging is by keyset over the sort keys plus ``rid`` (never OFFSET), so a page link
stays correct while other data changes: no unchanged entry is skipped or repeated.
NULL sort values sort last in either direction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.visitors import ExternallyTraversible, iterate, replacement_traverse

from service.storage import audit_index
from service.storage.driverselect import DriverSelect
from service.storage.resources import COLUMNS, INDEX_TABLES, R, Stored, row_to_stored
from service.storage.tables import IdxReference, ResourceAccess

REF = IdxReference.__table__  # type: ignore[attr-defined]
A = ResourceAccess.__table__  # type: ignore[attr-defined]
INDEX_TABLE_NAMES = frozenset(table.name for table in INDEX_TABLES)


@dataclass(frozen=True)
class SortKey:
    expr: ColumnElement[Any]
    descending: bool


def _key_value(key: SortKey, i: int, value: Any) -> ColumnElement[Any]:
    # Named k<i>, as page() binds it: kept statements take each page's keyset as values.
    return bindparam(f"k{i}", value, type_=key.expr.type)


def _after(key: SortKey, i: int, value: Any, *, nulls_last: bool) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in this key's order."""
    if value is None:
        return false() if nulls_last else key.expr.is_not(None)
    bound = _key_value(key, i, value)
    cmp = key.expr < bound if key.descending else key.expr > bound
    return or_(cmp, key.expr.is_(None)) if nulls_last else cmp


def _equal(key: SortKey, i: int, value: Any) -> ColumnElement[bool]:
    return key.expr.is_(None) if value is None else key.expr == _key_value(key, i, value)


def _keyset(keys: Sequence[SortKey], values: Sequence[Any], *, nulls_last: bool) -> ColumnElement[bool]:
    clauses = []
    for i, key in enumerate(keys):
        prefix = [_equal(keys[j], j, values[j]) for j in range(i)]
        clauses.append(and_(*prefix, _after(key, i, values[i], nulls_last=nulls_last)))
    return or_(*clauses)


def _order(keys: Sequence[SortKey], *, nulls_last: bool) -> list[Any]:
    order: list[Any] = []
    for key in keys:
        if key.expr is not R.c.rid:  # rid is never NULL; keep ORDER BY rid index-friendly
            null_flag = key.expr.is_(None)
            order.append(null_flag if nulls_last else null_flag.desc())
        order.append(key.expr.desc() if key.descending else key.expr.asc())
    return order


@dataclass(frozen=True)
class Criteria:
    """What a search selects. ``shape`` is what its SQL depends on (search/compile.py): a page's
    statement is built once per shape and kept (None: built for this call alone). ``values`` are
    bound to it by name on every execution. ``conditions`` and ``sort`` build the SQL, with the
    values of the search that first had the shape."""

    resource_type: str
    shape: Hashable | None
    values: Mapping[str, Any]
    conditions: Callable[[], list[ColumnElement[bool]]]
    sort: Callable[[], list[tuple[ColumnElement[Any], bool]]] = list

    @classmethod
    def fixed(
        cls,
        resource_type: str,
        conditions: Sequence[ColumnElement[bool]],
        sort: Sequence[tuple[ColumnElement[Any], bool]] = (),
    ) -> Criteria:
        """Conditions built by the caller, for one page (not kept)."""
        return cls(resource_type, None, {}, lambda: list(conditions), lambda: list(sort))


# Page statements by shape, compiled once per dialect and run on the driver (storage/driverselect.py).
# Building and cache-keying an inbox page's statement cost 60 % of the search; a hub sees a few dozen
# shapes (an inbox, a clinic's follow-up, the app's lists), so the bound only stops a client that
# invents new shapes from growing it without end (the oldest goes first).
MAX_PLANS = 512
_PLANS: dict[Hashable, DriverSelect] = {}
_PLANS_LOCK = threading.Lock()


def _kept(key: Hashable, statement: Callable[[], Select[Any]]) -> DriverSelect:
    plan = _PLANS.get(key)
    if plan is None:
        built = DriverSelect(statement())
        with _PLANS_LOCK:
            plan = _PLANS.setdefault(key, built)
            while len(_PLANS) > MAX_PLANS:
                del _PLANS[next(iter(_PLANS))]
    return plan


def page(
    conn: Connection,
    criteria: Criteria,
    *,
    limit: int,
    after: Sequence[Any] | None = None,
    before: Sequence[Any] | None = None,
) -> tuple[list[Stored], list[list[Any]]]:
    """One page of current, non-deleted matches, with each row's sort-key values.

    ``after``/``before`` are the sort values (ending with rid) of the row the page
    starts after or ends before. Returns up to ``limit`` rows in the requested order.
    """
    backwards = before is not None
    keyset = before if before is not None else after
    # The keyset's values are bound too; which of them are NULL shapes the SQL (_after, _equal).
    nulls = None if keyset is None else tuple(v is None for v in keyset)
    dialect = conn.dialect.name

    def statement() -> Select[Any]:
        return _statement(dialect, criteria, limit=limit, keyset=keyset, backwards=backwards)

    if criteria.shape is None:
        rows: Sequence[Any] = conn.execute(statement()).all()
    else:
        values = dict(criteria.values)
        values.update((f"k{i}", v) for i, v in enumerate(keyset or ()) if v is not None)
        key = (dialect, criteria.resource_type, criteria.shape, limit, backwards, nulls)
        rows = _kept(key, statement).all(conn, values)
    if backwards:
        rows = list(reversed(rows))
    width = len(COLUMNS)
    return [row_to_stored(r) for r in rows], [list(r[width:]) for r in rows]


def _statement(
    dialect: str, criteria: Criteria, *, limit: int, keyset: Sequence[Any] | None, backwards: bool
) -> Select[Any]:
    keys = [SortKey(expr, desc) for expr, desc in criteria.sort()] + [SortKey(R.c.rid, False)]
    keys_q = [SortKey(k.expr, not k.descending) for k in keys] if backwards else keys
    nulls_last = not backwards
    where = [R.c.resource_type == criteria.resource_type, R.c.deleted == false(), *criteria.conditions()]
    if keyset is not None:
        where.append(_keyset(keys_q, keyset, nulls_last=nulls_last))
    driven = _driven_by_index(where, keys_q, limit, probe=dialect == "sqlite") if len(keys) == 1 else None
    # Driven, the page is its rids alone: the type and deleted tests are already in the index rows,
    # and left here they made SQLite read every resource of the type by ix_resource_type_updated and
    # sort, instead of fetching the page's rids by primary key (an inbox page 3.2 -> 2.4 ms at 10k
    # Tasks, 15.4 -> 7.3 ms at 100k).
    return (
        select(*COLUMNS, *[k.expr.label(f"sk{i}") for i, k in enumerate(keys)])
        .where(*where if driven is None else [R.c.rid.in_(driven)])
        .order_by(*_order(keys_q, nulls_last=nulls_last))
        .limit(limit)
    )


def _driven_by_index(
    where: Sequence[ColumnElement[bool]], keys: Sequence[SortKey], limit: int, *, probe: bool = False
) -> Select[Any] | None:
    """The page's rids found in an index table alone, when a search in rid order can be driven by one.

    ``rid IN (SELECT rid FROM idx_token WHERE ...)`` and its kind are semi-joins the planner
    estimates as independent, so for a partner's inbox (owner AND status AND visible) PostgreSQL
    expected 14 matches in 10k Tasks where there were 500, chose to read every Task and sort, and
    took 16 ms. Asked instead for the first ``limit`` rids of one positive index condition, with the
    other conditions applied to that rid, it merge-joins ordered index-only scans and stops at the
    limit: 1 ms. Index rows exist only for the current, non-deleted version of a resource of their
    own type (storage/resources.py clears them on delete and rewrites them on update), so the rids
    it returns need no further test against ``resource``. Other conditions qualify only if the
    resource row enters them through its rid alone.

    ``probe`` (SQLite): the caller's visibility as an EXISTS probe of each candidate's rid. SQLite
    builds an IN list in full before it reads the first candidate, and a partner's list is every
    rid it may see, so the inbox page grew with the table (see _probe).
    """
    conditions = list(where[2:])  # after resource_type and deleted (page() puts those first)
    driver = next((c for c in conditions if _index_subquery(c) is not None), None)
    if driver is None:
        return None
    matching = _index_subquery(driver)
    assert matching is not None
    idx_rid = matching.selected_columns[0]
    moved: list[ColumnElement[bool]] = []
    for cond in conditions:
        if cond is driver:
            continue
        inner = _rid_subquery(cond)
        if inner is not None and _uncorrelated(inner):
            # rid IN (SELECT ...), as index and visibility conditions are: the same subquery on the
            # index row's rid, with no traversal (cloning them cost 0.36 ms of a 2.4 ms inbox search).
            moved.append(_probe(inner, idx_rid) if probe else idx_rid.in_(inner))
            continue
        if any(col.table is R and col is not R.c.rid for col in _columns(cond)):
            return None  # _id, _lastUpdated: columns of resource itself
        moved.append(_with_rid(cond, idx_rid))
    key = keys[0]
    return (
        matching.where(*moved)
        .distinct()  # a resource with two matching index rows is one match
        .order_by(idx_rid.desc() if key.descending else idx_rid.asc())
        .limit(limit)
    )


def _probe(inner: Select[Any], rid: ColumnElement[Any]) -> ColumnElement[bool]:
    """A visibility condition, ``rid IN (SELECT rid FROM resource_access WHERE ...)``, as ``EXISTS
    (... AND resource_access.rid = rid)``: one probe of its (organization, rid) index per candidate.
    Other conditions stay IN: a short list (a rare status) rejects candidates before any probe. (An
    AuditEvent parameter's rows are a UNION ALL, which SQLite would scan whole on every probe.)"""
    if _source(inner) is not A:
        return rid.in_(inner)
    return inner.where(inner.selected_columns[0] == rid).exists()


def _rid_subquery(cond: ColumnElement[bool]) -> Select[Any] | None:
    """The SELECT of ``resource.rid IN (SELECT one column ...)``, or None for any other condition."""
    if (
        not isinstance(cond, BinaryExpression)
        or cond.operator is not operators.in_op
        or cond.left is not R.c.rid
    ):
        return None
    inner = getattr(cond.right, "element", None)
    if not isinstance(inner, Select) or len(inner.selected_columns) != 1:
        return None
    return inner


def _uncorrelated(inner: Select[Any]) -> bool:
    """True for the subqueries CompiledFilters.conditions and visible_condition build: the rid of one index
    table (aliased) or of resource_access, filtered on that table's own columns and values (the hub
    has no chained or _has parameters, the ones that would reach back to ``resource``)."""
    return _source(inner) is A or _from_index(inner)


def _index_subquery(cond: ColumnElement[bool]) -> Select[Any] | None:
    """The SELECT of ``resource.rid IN (SELECT rid FROM idx_...)``, or None for any other condition."""
    inner = _rid_subquery(cond)
    if inner is None:
        return None
    if not _from_index(inner):
        return None
    return inner


def _from_index(inner: Select[Any]) -> bool:
    """Whether a subquery selects from one index table, or from the AuditEvent rows of one parameter
    (storage/audit_index.py: like an index table's, they exist only for current resources)."""
    froms = inner.columns_clause_froms
    if len(froms) == 1 and audit_index.is_source(froms[0]):
        return True
    return getattr(_source(inner), "name", None) in INDEX_TABLE_NAMES


def _source(inner: Select[Any]) -> Any:
    """The one table a subquery selects from, through its alias; None if it selects from several.
    (Read from the columns clause: get_final_froms would compile the SELECT.)"""
    froms = inner.columns_clause_froms
    return getattr(froms[0], "element", froms[0]) if len(froms) == 1 else None


def _with_rid(cond: ColumnElement[bool], rid: ColumnElement[Any]) -> ColumnElement[bool]:
    def swap(element: ExternallyTraversible, **_kw: Any) -> ExternallyTraversible | None:
        return rid if element is R.c.rid else None

    opts: dict[str, Any] = {}
    return replacement_traverse(cond, opts, swap)


def _columns(cond: ColumnElement[Any]) -> list[Any]:
    return [e for e in iterate(cond) if isinstance(e, Column)]


def count(conn: Connection, criteria: Criteria) -> int:
    stmt = (
        select(func.count())
        .select_from(R)
        .where(R.c.resource_type == criteria.resource_type, R.c.deleted == false(), *criteria.conditions())
    )
    return int(conn.execute(stmt).scalar_one())


def _references(resource_type: str, param: str) -> Any:
    """Where the reference rows of ``resource_type``'s ``param`` are (storage/audit_index.py)."""
    return audit_index.source(param) if audit_index.has_own_rows(resource_type, param) else REF


def referenced(
    conn: Connection, source_type: str, rids: Sequence[int], param: str, target_type: str | None
) -> list[tuple[str, str]]:
    """(type, id) pairs that the given resources, of ``source_type``, reference through ``param``."""
    if not rids:
        return []
    ref = _references(source_type, param)
    cond = [ref.c.rid.in_(list(rids)), ref.c.param == param, ref.c.target_id.is_not(None)]
    if target_type:
        cond.append(ref.c.target_type == target_type)
    rows = conn.execute(select(ref.c.target_type, ref.c.target_id).where(*cond).distinct()).all()
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
    ref = _references(source_type, param)
    match = or_(*[and_(ref.c.target_type == t, ref.c.target_id == i) for t, i in targets])
    sub = select(ref.c.rid).where(ref.c.resource_type == source_type, ref.c.param == param, match)
    rows = conn.execute(
        select(*COLUMNS).where(R.c.rid.in_(sub), R.c.deleted == false(), *extra).order_by(R.c.rid)
    ).all()
    return [row_to_stored(r) for r in rows]

"""Compiling a parsed search into SQLAlchemy Core conditions over the index tables.

Each filter becomes ``resource.rid IN (SELECT rid FROM idx_<type> WHERE resource_type = …
AND param = … AND (value OR value …))``; ``:not`` and ``:missing=true`` become NOT IN.
``_id`` and ``_lastUpdated`` are columns of ``resource``. Only portable constructs are used
(SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, inspect, or_, select
from sqlalchemy.sql.expression import FromClause

from service.errors import BadRequest
from service.search import _conditions as c
from service.search._query import (
    DateValue,
    Filter,
    NumberValue,
    ReferenceValue,
    SearchQuery,
    TokenValue,
    UriValue,
)
from service.search.params import params_for
from service.search.types import ParamType
from service.storage import audit_index
from service.storage.tables import IdxDate, IdxNumber, IdxReference, IdxString, IdxToken, IdxUri

_TABLES: dict[ParamType, Any] = {
    "token": IdxToken,
    "string": IdxString,
    "date": IdxDate,
    "reference": IdxReference,
    "number": IdxNumber,
    "quantity": IdxNumber,
    "uri": IdxUri,
}


def _table(kind: ParamType) -> FromClause:
    table: Table = _TABLES[kind].__table__
    return table.alias()  # a fresh alias per use, so nested EXISTS never collide


@lru_cache(maxsize=256)
def _slot(kind: ParamType, slot: int) -> FromClause:
    """The ``slot``-th alias of an index table, made once: a fresh alias builds a proxy of every column
    (half of compiling a filter). Filters of one query on the same table take different slots, so
    their subqueries never share one; Core objects are immutable, so statements may share them."""
    alias = _table(kind)
    _ = alias.c  # its columns built now, not lazily by two requests at once
    return alias


def _index(resource_type: str, param: str, kind: ParamType, slot: int | None) -> FromClause:
    """Where a parameter's index rows are: its type's index table, or for most AuditEvent parameters
    the audit tables and that table together (storage/audit_index.py)."""
    if audit_index.has_own_rows(resource_type, param):
        return audit_index.source(param, slot or 0)
    return _table(kind) if slot is None else _slot(kind, slot)


def _selectable(resource: Any) -> FromClause:
    """The FROM item for ``Resource``, ``aliased(Resource)`` or a Core table/alias."""
    if isinstance(resource, FromClause):
        return resource
    selectable: FromClause = inspect(resource).selectable
    return selectable


def _value_condition(idx: FromClause, f: Filter, value: Any, base_url: str | None, now: datetime) -> Any:
    col = idx.c
    if isinstance(value, TokenValue):
        return c.token_condition(col.system, col.code, col.text, value)
    if isinstance(value, DateValue):
        return c.date_condition(col.low, col.high, value, now)
    if isinstance(value, ReferenceValue):
        return c.reference_condition(col.target_type, col.target_id, col.url, col.version, value, base_url)
    if isinstance(value, NumberValue):
        cond = c.number_condition(col.value, value)
        unit = c.quantity_unit_condition(col.system, col.code, col.unit, value)
        return cond if unit is None else and_(cond, unit)
    if isinstance(value, UriValue):
        return c.uri_condition(col.value, value, f.modifier)
    # string
    if f.modifier == "exact":
        return col.exact == value.value
    if f.modifier == "contains":
        return col.value.contains(value.normalised, autoescape=True)
    return col.value.startswith(value.normalised, autoescape=True)


def _resource_condition(res: FromClause, f: Filter, now: datetime) -> ColumnElement[bool]:
    if f.param.name == "_id":
        ids = [v.code for v in f.values if isinstance(v, TokenValue)]
        return res.c.id.not_in(ids) if f.modifier == "not" else res.c.id.in_(ids)
    updated = res.c.last_updated
    return or_(*(c.date_condition(updated, updated, v, now) for v in f.values if isinstance(v, DateValue)))


def compile_filter(
    f: Filter,
    resource_type: str,
    resource: Any,
    *,
    base_url: str | None = None,
    now: datetime | None = None,
    slot: int | None = None,
) -> ColumnElement[bool]:
    """One filter's condition; ``slot``: which shared alias of its index table (None: a fresh one)."""
    now = now or datetime.now(UTC)
    res = _selectable(resource)
    if f.param.name in ("_id", "_lastUpdated"):
        return _resource_condition(res, f, now)
    idx = _index(resource_type, f.param.name, f.param.type, slot)
    where = [idx.c.resource_type == resource_type, idx.c.param == f.param.name]
    if f.modifier != "missing":
        where.append(or_(*(_value_condition(idx, f, v, base_url, now) for v in f.values)))
    # An uncorrelated ``rid IN (SELECT rid FROM idx ...)``: the planner can drive the search
    # from the (covering) index and semi-join, instead of probing EXISTS once per resource row.
    matching = select(idx.c.rid).where(*where)
    negate = f.missing is True or f.modifier == "not"
    return res.c.rid.not_in(matching) if negate else res.c.rid.in_(matching)


def compile_filters(
    query: SearchQuery, resource: Any, *, base_url: str | None = None, now: datetime | None = None
) -> list[ColumnElement[bool]]:
    """Conditions (to AND) selecting the resources of ``query.resource_type`` that match.

    ``resource`` is ``Resource``, an ``aliased(Resource)`` or a Core table/alias; the
    caller adds ``resource_type == …`` and ``deleted`` itself. ``base_url`` (e.g.
    ``https://host/fhir``) makes absolute references to this server match relative ones.
    """
    slots: Counter[ParamType] = Counter()
    conditions = []
    for f in query.filters:
        conditions.append(
            compile_filter(
                f, query.resource_type, resource, base_url=base_url, now=now, slot=slots[f.param.type]
            )
        )
        slots[f.param.type] += 1
    return conditions


def sort_expression(
    param_name: str, resource_type: str, descending: bool, resource: Any
) -> ColumnElement[Any]:
    """The value to ORDER BY for ``_sort``: min over the index ascending, max descending.

    Returns the bare value (apply ``.desc()`` yourself); NULL when the resource has no
    value for the parameter. ``sort_clauses`` does both and puts NULLs last.
    """
    res = _selectable(resource)
    if param_name == "_id":
        return res.c.id
    if param_name == "_lastUpdated":
        return res.c.last_updated
    param = params_for(resource_type).get(param_name)
    if param is None:
        raise BadRequest(f"Unknown sort parameter '{param_name}' for {resource_type}")
    idx = _index(resource_type, param_name, param.type, None)
    col: ColumnElement[Any]
    if param.type == "date":
        col = idx.c.high if descending else idx.c.low
    elif param.type == "token":
        col = idx.c.code
    elif param.type == "reference":
        col = func.coalesce(idx.c.target_type + "/" + idx.c.target_id, idx.c.url)
    else:
        col = idx.c.value
    agg = func.max(col) if descending else func.min(col)
    return (
        select(agg)
        .where(idx.c.rid == res.c.rid, idx.c.resource_type == resource_type, idx.c.param == param_name)
        .correlate(res)
        .scalar_subquery()
    )


def sort_clauses(query: SearchQuery, resource: Any) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for ``query.sort``: NULLs last either way, then ``rid`` as a tiebreaker."""
    clauses: list[ColumnElement[Any]] = []
    for name, descending in query.sort:
        expr = sort_expression(name, query.resource_type, descending, resource)
        clauses += [expr.is_(None), expr.desc() if descending else expr.asc()]
    clauses.append(_selectable(resource).c.rid.asc())
    return clauses

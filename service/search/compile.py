"""Compiling a parsed search into SQLAlchemy Core conditions over the index tables.

A query compiles to a shape and values first (``compile_query``, search/_spec.py), so that its SQL
is built once per shape and kept (storage/search_sql.py).

Each filter becomes ``resource.rid IN (SELECT rid FROM idx_<type> WHERE resource_type = …
AND param = … AND (value OR value …))``; ``:not`` and ``:missing=true`` become NOT IN.
``_id`` and ``_lastUpdated`` are columns of ``resource``. Only portable constructs are used
(SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Table, func, inspect, select
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
from service.search._spec import Binder, Col, Spec, and_spec, build, flatten, named, not_spec, or_spec
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


def _value_spec(f: Filter, value: Any, base_url: str | None, now: datetime) -> Spec:
    if isinstance(value, TokenValue):
        return c.token_condition(Col("system"), Col("code"), Col("text"), value)
    if isinstance(value, DateValue):
        return c.date_condition(Col("low"), Col("high"), value, now)
    if isinstance(value, ReferenceValue):
        return c.reference_condition(
            Col("target_type"), Col("target_id"), Col("url"), Col("version"), value, base_url
        )
    if isinstance(value, NumberValue):
        cond = c.number_condition(Col("value"), value)
        unit = c.quantity_unit_condition(Col("system"), Col("code"), Col("unit"), value)
        return cond if unit is None else and_spec(cond, unit)
    if isinstance(value, UriValue):
        return c.uri_condition(Col("value"), value, f.modifier)
    # string
    if f.modifier == "exact":
        exact: Spec = Col("exact") == value.value
        return exact
    if f.modifier == "contains":
        return Col("value").contains(value.normalised)
    return Col("value").startswith(value.normalised)


def _filter_spec(f: Filter, base_url: str | None, now: datetime) -> Spec | None:
    """What one filter asks of its index rows (or, for _id and _lastUpdated, of ``resource``)."""
    if f.param.name == "_id":
        ids = Col("id").in_([v.code for v in f.values if isinstance(v, TokenValue)])
        return not_spec(ids) if f.modifier == "not" else ids
    if f.param.name == "_lastUpdated":
        updated = Col("last_updated")
        dates = (v for v in f.values if isinstance(v, DateValue))
        return or_spec(*(c.date_condition(updated, updated, v, now) for v in dates))
    if f.modifier == "missing":
        return None
    return or_spec(*(_value_spec(f, v, base_url, now) for v in f.values))


@dataclass(frozen=True)
class _Part:
    filter: Filter
    slot: int  # which shared alias of its index table (_slot)
    spec: Spec | None
    prefix: str  # of its values' bind names


@dataclass(frozen=True)
class CompiledFilters:
    """A query's filters as a shape and values (search/_spec.py): the shape is what their SQL depends
    on, the key under which ``storage.search_sql`` keeps a page's statement; ``values`` are bound to
    that statement by name on every execution; ``conditions`` builds the SQL, once per shape."""

    resource_type: str
    parts: tuple[_Part, ...]
    shape: tuple[Any, ...]
    values: dict[str, Any]

    def conditions(self, resource: Any) -> list[ColumnElement[bool]]:
        """Conditions (to AND) over ``resource`` (``Resource``, an ``aliased(Resource)`` or a Core
        table/alias), with this query's values bound; the caller adds ``resource_type == …`` and
        ``deleted`` itself."""
        res = _selectable(resource)
        return [self._condition(part, res) for part in self.parts]

    def _condition(self, part: _Part, res: FromClause) -> ColumnElement[bool]:
        f, bind = part.filter, Binder(part.prefix)
        if f.param.name in ("_id", "_lastUpdated"):
            assert part.spec is not None
            return build(part.spec, res.c, bind)
        idx = _index(self.resource_type, f.param.name, f.param.type, part.slot)
        where = [idx.c.resource_type == self.resource_type, idx.c.param == f.param.name]
        if part.spec is not None:
            where.append(build(part.spec, idx.c, bind))
        # An uncorrelated ``rid IN (SELECT rid FROM idx ...)``: the planner can drive the search
        # from the (covering) index and semi-join, instead of probing EXISTS once per resource row.
        matching = select(idx.c.rid).where(*where)
        negate = f.missing is True or f.modifier == "not"
        return res.c.rid.not_in(matching) if negate else res.c.rid.in_(matching)


def compile_query(
    query: SearchQuery, *, base_url: str | None = None, now: datetime | None = None
) -> CompiledFilters:
    """The query's filters, compiled to a shape and values; ``base_url`` (e.g.
    ``https://host/fhir``) makes absolute references to this server match relative ones."""
    now = now or datetime.now(UTC)
    slots: Counter[ParamType] = Counter()
    parts: list[_Part] = []
    shape: list[Any] = [query.resource_type]
    values: dict[str, Any] = {}
    for i, f in enumerate(query.filters):
        # Filters of one query on the same index table take different aliases.
        slot = slots[f.param.type]
        slots[f.param.type] += 1
        spec = _filter_spec(f, base_url, now)
        found: list[Any] = []
        spec_shape = None if spec is None else flatten(spec, found)
        part = _Part(f, slot, spec, f"f{i}_")
        values.update(named(part.prefix, found))
        shape.append((f.param.name, f.param.type, f.modifier, f.missing, slot, spec_shape))
        parts.append(part)
    return CompiledFilters(query.resource_type, tuple(parts), tuple(shape), values)


def compile_filters(
    query: SearchQuery, resource: Any, *, base_url: str | None = None, now: datetime | None = None
) -> list[ColumnElement[bool]]:
    """Conditions (to AND) selecting the resources of ``query.resource_type`` that match
    (``compile_query(...).conditions(resource)``)."""
    return compile_query(query, base_url=base_url, now=now).conditions(resource)


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

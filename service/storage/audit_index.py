"""AuditEvent search values in two compact tables, read back as generic index rows
(docs/adr/0017-audit-index.md).

Every access writes an AuditEvent. In the generic index tables an event was nine rows across
three tables and ten indexes, keyed by long strings (``AuditEvent``, coding systems), and writing
them was most of what a read cost the database. Here, on write (``split``):

- the first row of each single-valued parameter (``COLUMN_PARAMS``: the date, type, subtype, action,
  outcome, altid and agent of the event) is a group of columns of the event's one ``audit_index`` row;
- ``entity`` and ``patient`` references of the ``Type/id`` form are ``audit_entity`` rows, clustered
  on (param, id, type, rid): the lookup an audit review makes;
- every other row (a second agent, a ``source``, ``_tag``, an absolute URL) goes to the generic tables
  as before, as do all rows of events written before this layout.

On search, ``source(param)`` is the union of the three as one selectable with the columns of the
parameter's generic index table, so the search compiler, ``:missing``, ``_sort`` and ``_include``
work on it as on any index table. ``tests/storage/test_audit_index.py`` checks on both databases that
the union gives back exactly the rows that were written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, String, cast, literal_column, null, or_, select, union_all
from sqlalchemy.sql.selectable import Subquery

from service.search.types import DateRow, IndexRow, ReferenceRow, TokenRow
from service.storage.bulk import BulkInsert
from service.storage.index_rows import ROW_TABLES
from service.storage.tables import AuditEntity, AuditIndex

AUDIT = "AuditEvent"
AI = AuditIndex.__table__  # type: ignore[attr-defined]
AE = AuditEntity.__table__  # type: ignore[attr-defined]

COLUMN_PARAMS: dict[str, type[Any]] = {
    "date": DateRow,
    "type": TokenRow,
    "subtype": TokenRow,
    "action": TokenRow,
    "outcome": TokenRow,
    "altid": TokenRow,
    "agent": ReferenceRow,
}
ENTITY_PARAMS = frozenset({"entity", "patient"})


def _fields(kind: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind) if f.name != "param")


# The audit_index columns in table order after rid, and where each comes from: (param, field).
_SLOTS = tuple((param, name) for param, kind in COLUMN_PARAMS.items() for name in _fields(kind))
_OFFSET = {param: next(i for i, (p, _) in enumerate(_SLOTS) if p == param) for param in COLUMN_PARAMS}

INDEX_ROWS = BulkInsert(AI, ("rid", *(f"{param}_{name}" for param, name in _SLOTS)))
ENTITY_ROWS = BulkInsert(AE, ("param", "target_id", "target_type", "rid"))


@dataclass(frozen=True, slots=True)
class SplitRows:
    """An AuditEvent's index rows as the audit tables store them, before its rid is known and before
    the driver's processing: its audit_index values (the columns after rid, in table order), its
    audit_entity keys (param, target_id, target_type) and the rows left for the generic tables."""

    columns: tuple[Any, ...]
    entities: tuple[tuple[str, str, str], ...]
    rest: tuple[IndexRow, ...]


# What ResourceStore takes for an AuditEvent: its index rows, or those rows split already.
EventRows = Iterable[IndexRow] | SplitRows

NO_COLUMNS: tuple[Any, ...] = (None,) * len(_SLOTS)
DATE_SLOT = _OFFSET["date"]


def entity_key(row: IndexRow) -> tuple[str, str, str] | None:
    """The audit_entity key of an ``entity`` or ``patient`` row of the ``Type/id`` form, else None."""
    if (
        row.param in ENTITY_PARAMS
        and type(row) is ReferenceRow
        and row.target_id
        and row.target_type
        and row.url is None
        and row.version is None
    ):
        return row.param, row.target_id, row.target_type
    return None


def split_rows(rows: Iterable[IndexRow]) -> SplitRows:
    """Where each of an event's index rows is stored: the first row of each ``COLUMN_PARAMS``
    parameter with a value in its columns, ``entity``/``patient`` references of the ``Type/id`` form
    in audit_entity, the rest in the generic tables."""
    values: list[Any] = list(NO_COLUMNS)
    taken: set[str] = set()
    entity: dict[tuple[str, str, str], None] = {}
    rest: list[IndexRow] = []
    for row in rows:
        param = row.param
        kind = COLUMN_PARAMS.get(param)
        if kind is type(row) and param not in taken:
            row_values = list(vars(row).values())[1:]  # the fields after param, in order
            if any(v is not None for v in row_values):
                taken.add(param)
                start = _OFFSET[param]
                values[start : start + len(row_values)] = row_values
                continue
        key = entity_key(row)
        if key is not None:
            entity[key] = None
            continue
        rest.append(row)
    return SplitRows(tuple(values), tuple(entity), tuple(rest))


def split(
    dialect: Dialect, rid: int, rows: EventRows
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], Sequence[IndexRow]]:
    """An event's index rows (or ``split_rows`` of them) as its audit_index row, its audit_entity rows
    (both processed for ``dialect``'s driver) and the rows left for the generic tables."""
    parts = rows if isinstance(rows, SplitRows) else split_rows(rows)
    return (
        INDEX_ROWS.process(dialect, (rid, *parts.columns)),
        [ENTITY_ROWS.process(dialect, (*key, rid)) for key in parts.entities],
        parts.rest,
    )


def _text(value: str) -> Any:
    return literal_column(f"'{value}'", String())


def _view(param: str, name: str) -> Subquery:
    kind = COLUMN_PARAMS.get(param) or ReferenceRow
    generic = ROW_TABLES[kind].__table__  # type: ignore[attr-defined]
    names = _fields(kind)
    stored = select(
        generic.c.rid, generic.c.resource_type, generic.c.param, *(generic.c[n] for n in names)
    ).where(generic.c.resource_type == AUDIT, generic.c.param == param)
    if param in COLUMN_PARAMS:
        columns = [AI.c[f"{param}_{n}"] for n in names]
        own = select(
            AI.c.rid,
            _text(AUDIT).label("resource_type"),
            _text(param).label("param"),
            *(col.label(n) for col, n in zip(columns, names, strict=True)),
        ).where(or_(*(col.is_not(None) for col in columns)))
    else:
        own = select(
            AE.c.rid,
            _text(AUDIT).label("resource_type"),
            AE.c.param,
            AE.c.target_type,
            AE.c.target_id,
            cast(null(), String()).label("url"),
            cast(null(), String()).label("version"),
        ).where(AE.c.param == param)
    view = union_all(own, stored).subquery(name)
    _ = view.c  # its columns built now, not lazily by two requests at once
    return view


def has_own_rows(resource_type: str, param: str) -> bool:
    """Whether this parameter's rows may be in the audit tables (else only in the generic ones)."""
    return resource_type == AUDIT and (param in COLUMN_PARAMS or param in ENTITY_PARAMS)


def is_source(from_: Any) -> bool:
    """Whether ``from_`` is one of ``source``'s selectables (search_sql drives a page from them)."""
    return isinstance(from_, Subquery) and _SOURCE_NAME.fullmatch(from_.name) is not None


_PARAMS = "|".join(sorted({*COLUMN_PARAMS, *ENTITY_PARAMS}))
_SOURCE_NAME = re.compile(rf"audit_({_PARAMS})_\d+")


@lru_cache(maxsize=256)
def source(param: str, slot: int = 0) -> Subquery:
    """The index rows of AuditEvent parameter ``param`` (``has_own_rows``), wherever they are stored,
    with the columns of its generic index table; ``slot``: one query's n-th use of it (aliases never
    shared within a statement, as search/compile.py's for the generic tables)."""
    return _view(param, f"audit_{param}_{slot}")

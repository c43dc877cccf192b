"""A Core SELECT compiled once per dialect and run through the driver, for the hottest lookups.

A read by id is one indexed SELECT that SQLite answers in a few microseconds, but executing a
cached Core statement costs 60-110 µs of Python (execution context, parameter construction,
result metadata: issue 11's profile), and every request makes one or more. ``DriverSelect``
keeps the statement written in Core; it compiles it once per dialect and then runs it on the
driver's cursor (storage/driver.py), applying the same bind and result processors SQLAlchemy
would (UTC timestamps, JSON, booleans), so rows come back as Core returns them. Errors and pool
invalidation still go through the Connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Select

from service.storage import driver

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Param:
    key: str  # its key in the caller's values (for a parameter the caller must give)
    source: Callable[[], Any] | None  # a callable giving its value at execution ("now")
    literal: Any  # the value written into the statement, for a bound literal (required=False)
    required: bool
    processor: Processor


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[_Param, ...]  # in the order the statement takes them
    positional: bool
    names: tuple[str, ...]
    results: tuple[Processor, ...]


class DriverSelect:
    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, processed as Core would return it, or None."""
        found = self.all(conn, values)
        return found[0] if found else None

    def all(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row, processed as Core would return them."""
        plan = self._plan(conn.dialect)
        bound = []
        for param in plan.params:
            if param.source is not None:
                value = param.source()
            elif param.required or param.key in values:
                # A named parameter takes the caller's value where one is given, even one that was
                # built with a value (a search's, storage/search_sql.py: built with the first values).
                value = values[param.key]
            else:
                value = param.literal
            bound.append(value if param.processor is None or value is None else param.processor(value))
        params: Sequence[Any] | dict[str, Any] = (
            tuple(bound) if plan.positional else dict(zip(plan.names, bound, strict=True))
        )
        results = plan.results
        return [
            tuple(v if p is None or v is None else p(v) for v, p in zip(row, results, strict=True))
            for row in driver.rows(conn, plan.sql, params)
        ]

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self.statement, dialect)
        return plan


def _compile(statement: Select[Any], dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:
        # An IN over a list is expanded per execution; write it as equalities instead.
        raise ValueError("DriverSelect takes no expanding IN parameters")
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    order: Sequence[str] = compiled.positiontup if compiled.positional else list(by_name)  # type: ignore[assignment]
    params = tuple(
        _Param(
            key=bind.key,
            source=bind.callable,
            literal=bind.value,
            required=bind.required,
            processor=bind.type.dialect_impl(dialect).bind_processor(dialect),
        )
        for bind in (by_name[name] for name in order)
    )
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    return _Plan(compiled.string, params, bool(compiled.positional), tuple(order), results)

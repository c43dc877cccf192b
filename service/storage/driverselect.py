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
class _Plan:
    sql: str
    # Per bound parameter, in the order the statement takes them: its key in the caller's values
    # (or the callable giving its value), and its bind processor.
    params: tuple[tuple[str, Callable[[], Any] | None, Processor], ...]
    positional: bool
    names: tuple[str, ...]
    results: tuple[Processor, ...]


class DriverSelect:
    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, processed as Core would return it, or None."""
        plan = self._plan(conn.dialect)
        bound = [(callable_() if callable_ else values[key]) for key, callable_, _ in plan.params]
        bound = [
            v if p is None or v is None else p(v) for v, (_, _, p) in zip(bound, plan.params, strict=True)
        ]
        params: Sequence[Any] | dict[str, Any] = (
            tuple(bound) if plan.positional else dict(zip(plan.names, bound, strict=True))
        )
        found = driver.rows(conn, plan.sql, params)
        if not found:
            return None
        row = found[0]
        return tuple(v if p is None or v is None else p(v) for v, p in zip(row, plan.results, strict=True))

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self.statement, dialect)
        return plan

    def sql(self, dialect: Dialect) -> str:
        return self._plan(dialect).sql


def _compile(statement: Select[Any], dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    order: Sequence[str] = compiled.positiontup if compiled.positional else list(by_name)  # type: ignore[assignment]
    params = tuple(
        (
            by_name[name].key,
            by_name[name].callable,
            by_name[name].type.dialect_impl(dialect).bind_processor(dialect),
        )
        for name in order
    )
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    return _Plan(compiled.string, params, bool(compiled.positional), tuple(order), results)

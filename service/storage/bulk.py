"""Many rows into one table in one statement, with SQLAlchemy's bind processing but not its per-row machinery.

Every request writes rows: its AuditEvent (a resource row, a history row and about nine index
rows), and a write its own resource, history and index rows too. Through SQLAlchemy Core a
multi-row insert costs 35-60 µs per row of Python (parameter construction, bind processing
and the "insertmanyvalues" batching, row by row; issue 11's profile). Here the statement text
is built once per table, dialect and row count, the column values go through the very bind
processors SQLAlchemy would apply (the column types' own: UTC timestamps, JSON, booleans), so
what is stored is what Core would have stored, and the statement runs through
the driver's cursor (storage/driver.py): one execution per table per batch, with SQLAlchemy's
error wrapping and pool invalidation intact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Dialect, Table

from service.storage import driver

# SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535; stay well under both.
MAX_PARAMETERS = 30_000


class BulkInsert:
    """``INSERT INTO table (columns) VALUES (...), (...) [RETURNING ...]`` for one table."""

    def __init__(self, table: Table, columns: Sequence[str], returning: Sequence[str] = ()) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.returning = tuple(returning)
        self.rows_per_statement = max(1, MAX_PARAMETERS // len(self.columns))
        # Per dialect, the columns that have a bind processor (on SQLite, of an index row: the
        # timestamps alone), with it.
        self._processors: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {}

    def process(self, dialect: Dialect, values: Sequence[Any]) -> tuple[Any, ...]:
        """One row's values as the driver takes them."""
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} values for the {len(self.columns)} columns of {self.table.name}")
        applied = self._processors.get(dialect.name)
        if applied is None:
            found = (
                self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.columns
            )
            applied = self._processors[dialect.name] = tuple(
                (i, p) for i, p in enumerate(found) if p is not None
            )
        if not applied:
            return tuple(values)
        out = list(values)
        for i, processor in applied:
            if out[i] is not None:
                out[i] = processor(out[i])
        return tuple(out)

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert ``rows`` (driver values, as from ``process``); the RETURNING rows as tuples, in no set
        order."""
        returned: list[Any] = []
        for sql, params, raw in self.statements(conn, rows):
            found = driver.rows(conn, sql, params, raw=raw)
            if self.returning:
                returned.extend(found)
        return returned

    def statements(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[driver.Statement]:
        """The statements that insert ``rows``, to run later (``driver.run_all``), in order."""
        dialect = conn.dialect.name
        step = self.rows_per_statement
        out: list[driver.Statement] = []
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            args = (self.table.name, self.columns, self.returning, len(chunk))
            sql = _statement(dialect, *args)
            raw = _statement(dialect, *args, raw=True) if dialect == "postgresql" else None
            out.append((sql, tuple(chain.from_iterable(chunk)), raw))
        return out


@lru_cache(maxsize=1024)
def _statement(
    dialect: str,
    table: str,
    columns: tuple[str, ...],
    returning: tuple[str, ...],
    rows: int,
    *,
    raw: bool = False,
) -> str:
    """The statement in the driver's placeholders, or (``raw``, PostgreSQL) in ``$1, $2, ...``."""
    width = len(columns)
    if raw:
        marks = driver.numbered(width * rows)
        groups = ["(" + ", ".join(marks[i : i + width]) + ")" for i in range(0, len(marks), width)]
    else:
        groups = ["(" + ", ".join([driver.mark(dialect)] * width) + ")"] * rows
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(groups)
    if returning:
        sql += " RETURNING " + ", ".join(returning)
    return sql

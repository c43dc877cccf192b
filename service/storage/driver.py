"""A statement straight to the driver's cursor, inside the Connection's transaction.

``Connection.exec_driver_sql`` still builds an execution context and a result for every statement;
on the hot path (a read by id, an AuditEvent batch) that was half the cost of the whole lookup in
the loaded server (110 against 50 µs a read by id; issue 11). ``rows`` calls the DBAPI cursor
itself, and otherwise behaves as the Connection would:

- A driver error goes through the Connection's own handler: wrapped as SQLAlchemy's
  ``DBAPIError`` subclasses (``IntegrityError`` for a duplicate id, ``OperationalError``), and a
  lost connection invalidates the pool, so a database outage is still a 503.
- Where anything listens for statements (``before_cursor_execute``: the statement counts in the
  tests and ``bench/statements.py``) or the engine echoes SQL, and outside a begun transaction
  (where the Connection would autobegin), it uses ``exec_driver_sql`` instead, so nothing is
  hidden from listeners and nothing commits on its own. The exception is a Connection with the
  ``AUTOCOMMIT_READS`` option (SQLite's kept reader, read-only): there a statement outside a
  transaction is one on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import psycopg
from sqlalchemy import Connection


def mark(dialect: str) -> str:
    """A positional parameter in the driver's own SQL: sqlite3 takes ``?``, psycopg ``%s``."""
    return "?" if dialect == "sqlite" else "%s"


# A statement that returns no rows, for ``run_all``: its SQL, its parameters, and (PostgreSQL) the
# same SQL numbered, as ``rows`` takes ``raw``.
Statement = tuple[str, Sequence[Any], str | None]


def numbered(count: int) -> list[str]:
    """PostgreSQL's own positional parameters, ``$1`` to ``$count``, for ``rows(raw=...)``."""
    return [f"${i}" for i in range(1, count + 1)]


def rows(
    conn: Connection, sql: str, params: Sequence[Any] | Mapping[str, Any], *, raw: str | None = None
) -> list[Any]:
    """The statement's rows (empty for one that returns none).

    ``raw`` (PostgreSQL): the same statement written with ``$1, $2, ...`` (``numbered``), sent as it
    is through psycopg's ``RawCursor``. psycopg otherwise rewrites every ``%s`` statement into that
    form, and keeps the rewrite only for statements of at most 50 parameters: a multi-row insert (an
    AuditEvent batch's index rows, a write's grants) was parsed afresh on every execution, a quarter
    of the PostgreSQL audit writer's CPU. Listeners and echo see ``sql``, as before."""
    if _observed(conn):
        result = conn.exec_driver_sql(sql, params)
        return list(result.all()) if result.returns_rows else []
    dbapi = conn.connection.dbapi_connection
    if raw is not None:
        cursor: Any = psycopg.RawCursor(cast("psycopg.Connection[Any]", dbapi))
        sql = raw
    else:
        cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    except Exception as exc:
        # Wraps and re-raises as Connection.execute would (and invalidates on a disconnect).
        conn._handle_dbapi_exception(exc, sql, params, cursor, None)
    finally:
        cursor.close()


def run_all(conn: Connection, statements: Sequence[Statement]) -> None:
    """Statements that return no rows, in order, as ``rows`` would run each.

    On PostgreSQL they go in psycopg's pipeline mode: sent together and answered in one round trip.
    One at a time, each cost a round trip of its own, about 150 µs of CPU in libpq and the kernel
    on this VM besides the GIL given up and won back (a write's history and index rows are four to
    ten statements). The first failure raises as ``rows`` would raise it; PostgreSQL skips the rest,
    and the transaction is aborted, as after any failed statement. SQLite has no round trips to
    save, and where anything listens for statements each goes through ``rows``."""
    if conn.dialect.name != "postgresql" or len(statements) < 2 or _observed(conn):
        for sql, params, raw in statements:
            rows(conn, sql, params, raw=raw)
        return
    dbapi = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    try:
        with dbapi.pipeline(), psycopg.RawCursor(dbapi) as raw_cursor, dbapi.cursor() as cursor:
            for sql, params, raw in statements:
                if raw is None:
                    cursor.execute(sql, params)
                else:
                    raw_cursor.execute(raw, params)
    except Exception as exc:
        # Wrapped and re-raised as for one statement (parameters hidden; a lost connection invalidated).
        conn._handle_dbapi_exception(
            exc, ";\n".join(s for s, _, _ in statements), [p for _, p, _ in statements], None, None
        )


# An execution option: outside a transaction, ``rows`` runs the statement on its own, in the
# driver's autocommit (SQLite's kept reader, storage/database.py).
AUTOCOMMIT_READS = "wraparound_autocommit_reads"


def _observed(conn: Connection) -> bool:
    dispatch = conn.dispatch
    return (
        bool(dispatch.before_cursor_execute)
        or bool(dispatch.after_cursor_execute)
        or bool(conn._echo)
        or (not conn.in_transaction() and not conn.get_execution_options().get(AUTOCOMMIT_READS))
    )

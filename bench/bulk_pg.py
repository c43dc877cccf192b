"""PostgreSQL bulk loading for the seeder: COPY, ids up front, index rebuilds, vacuum."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Connection, Table

from service.storage.database import Database

# Adding this many Tasks or more, drop the secondary indexes of the seeded tables and build them
# again afterwards: one sort per index instead of ~17 million scattered B-tree inserts at 1M.
REBUILD_FROM = 200_000
MAINTENANCE_WORK_MEM = "1GB"  # sorts in memory at 1M Tasks (6M reference rows)


def _raw(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def take_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """``count`` values of the table's ``rid`` sequence, as the inserts would have drawn them."""
    with _raw(conn).cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'rid')) FROM generate_series(1, %s)",
            (table.name, count),
        )
        return [int(row[0]) for row in cursor.fetchall()]


def copy(conn: Connection, table: Table, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` in the connection's transaction."""
    with (
        _raw(conn).cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as out,
    ):
        for row in rows:
            out.write_row(row)


def _secondary_indexes(conn: psycopg.Connection[Any], tables: list[str]) -> list[tuple[str, str]]:
    """(name, definition) of the indexes on ``tables`` that back no constraint (keys stay)."""
    return [
        (str(name), str(definition))
        for name, definition in conn.execute(
            """
            SELECT ix.relname, pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_class ix ON ix.oid = i.indexrelid
            WHERE t.relname = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY ix.relname
            """,
            (tables,),
        ).fetchall()
    ]


@contextmanager
def secondary_indexes_rebuilt(db: Database, tables: Iterable[Table], *, when: bool) -> Iterator[None]:
    """Drop the tables' secondary indexes for the block and create them again after it (even on error)."""
    if not when:
        yield
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        raw = _raw(conn)
        indexes = _secondary_indexes(raw, [t.name for t in tables])
        for name, _ in indexes:
            raw.execute(f'DROP INDEX "{name}"')
        try:
            yield
        finally:
            raw.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
            for _, definition in indexes:
                raw.execute(definition)


def vacuum_analyze(db: Database, tables: Iterable[Table]) -> None:
    """As autovacuum would soon after a bulk load: planner statistics and the visibility map."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.exec_driver_sql(f"VACUUM ANALYZE {table.name}")

"""SQLite keeps its temporary files in memory: no page of the database is copied to the temp directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.storage.database import Database


def _temp_files() -> list[str]:
    # SQLite unlinks a temp file as it opens it, so only this process's descriptors still show it.
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if "etilqs_" in target:  # SQLite's temp file prefix
            found.append(target)
    return found


@pytest.fixture
def scratch(clean_database: Database) -> Iterator[Database]:
    if clean_database.dialect != "sqlite" or not Path("/proc/self/fd").is_dir():
        pytest.skip("SQLite's temp files, seen through /proc (the PostgreSQL run has none)")
    with clean_database.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch_pages (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.exec_driver_sql(
            "INSERT INTO scratch_pages (body) SELECT printf('%.300c', 'x') FROM "
            "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n)"
        )
    try:
        yield clean_database
    finally:
        with clean_database.transaction() as conn:
            conn.exec_driver_sql("DROP TABLE scratch_pages")


def test_a_statement_journal_larger_than_sqlites_spill_size_stays_in_memory(scratch: Database) -> None:
    # One statement inside a write transaction that changes about 150 existing pages (600 KB): SQLite
    # journals their old contents so that the statement alone can be undone, and past 64 KB it would
    # spill that journal, special-category rows and all, into a file in /var/tmp.
    with scratch.transaction() as conn:
        conn.exec_driver_sql("UPDATE scratch_pages SET body = body || 'y'")
        during = _temp_files()
        changed = conn.exec_driver_sql("SELECT count(*) FROM scratch_pages WHERE body LIKE '%y'").scalar()
    assert changed == 2000
    assert during == []

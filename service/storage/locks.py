"""Transaction-scoped locks for check-then-write sequences (conditional create, start-up loads).

PostgreSQL: ``pg_advisory_xact_lock`` on a hash of the key, released at commit.
SQLite: write transactions already hold the database write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text


def lock(conn: Connection, key: str) -> None:
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(key.encode()).digest()
    value = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": value})

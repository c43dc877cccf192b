"""On PostgreSQL a read transaction runs on the reads engine (ADR 0021): in autocommit, each statement
its own transaction on a session whose every transaction is read-only, so no BEGIN or COMMIT goes to
the server; a write slipped into a read still fails, and leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError

from service.search.extract import extract_index_rows
from service.storage.database import Database
from service.storage.resources import R, ResourceStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def postgres(postgres_database: Database) -> Database:
    return postgres_database  # SQLite reads keep their transaction


def _status(conn: Connection) -> TransactionStatus:
    dbapi = conn.connection.dbapi_connection
    assert isinstance(dbapi, psycopg.Connection)
    return dbapi.info.transaction_status


def test_a_read_opens_no_transaction_block_and_a_write_does(postgres: Database) -> None:
    with postgres.transaction(write=False) as conn:
        assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        assert _status(conn) is TransactionStatus.IDLE  # the SELECT was its own transaction
    with postgres.transaction(write=True) as conn:
        assert conn.execute(text("SHOW transaction_read_only")).scalar_one() == "off"
        assert _status(conn) is TransactionStatus.INTRANS
    assert len(postgres.engines) == 2


def test_a_write_slipped_into_a_read_fails_and_changes_nothing(postgres: Database) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Guarded"}]}
    with postgres.transaction() as conn:
        stored = ResourceStore(conn).create(
            "Patient", patient, extract_index_rows(patient), now=datetime.now(UTC)
        )
    with pytest.raises(DBAPIError, match="read-only transaction"), postgres.transaction(write=False) as conn:
        conn.execute(R.delete().where(R.c.id == stored.id))
    with postgres.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(R).where(R.c.id == stored.id)).scalar_one() == 1

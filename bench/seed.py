"""Bulk Task seeding for the inbox search: the rows ``ResourceStore.create`` writes, in bulk.

Each Task gets the current-version row, its history row, its index rows (from the same
``extract_index_rows`` and row-to-table mapping the store uses) and access rows for its owner
and requester, inserted with executemany in large transactions, so 100k Tasks take seconds,
not the hours one POST each would.

Shape of the data: Tasks are spread evenly over the bench partners (``world.PARTNERS``);
a quarter are ``requested``, the rest accepted, in-progress or completed. So at 100k Tasks
the searched partner owns 20k, of which 5k are in its inbox.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Table, insert

from bench import world
from service.search.extract import extract_index_rows
from service.storage.database import Database
from service.storage.index_rows import row_table, row_values
from service.storage.resources import H, R
from service.storage.tables import ResourceAccess

A: Table = ResourceAccess.__table__  # type: ignore[attr-defined]
STATUSES = ("requested", "accepted", "in-progress", "completed")
BATCH = 5000


def task(n: int, now: datetime) -> dict[str, Any]:
    partner = world.PARTNERS[n % len(world.PARTNERS)]
    status = task_status(n)
    authored = (now - timedelta(minutes=n)).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "resourceType": "Task",
        "identifier": [{"system": "https://bench.wraparound.org.uk/Id/task", "value": f"TASK-{n:08d}"}],
        "basedOn": [{"reference": f"ServiceRequest/bench-sr-{n}"}],
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/bench-sr-{n}"},
        "for": {"reference": f"Patient/bench-patient-{n}"},
        "authoredOn": authored,
        "lastModified": authored,
        "requester": {"reference": f"Organization/{world.CLINIC}"},
        "owner": {"reference": f"Organization/{partner}"},
    }


def _stamp(content: dict[str, Any], resource_id: str, now: datetime) -> dict[str, Any]:
    # As ResourceStore.create stamps a first version.
    meta = {"versionId": "1", "lastUpdated": now.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    return {**content, "id": resource_id, "meta": meta}


def _insert_batch(conn: Connection, first: int, count: int, now: datetime) -> None:
    docs = []
    for n in range(first, first + count):
        content = task(n, now)
        docs.append((content, _stamp(content, str(uuid.uuid4()), now)))
    resource_rows = [
        {
            "resource_type": "Task",
            "id": doc["id"],
            "version_id": 1,
            "last_updated": now,
            "deleted": False,
            "content": doc,
        }
        for _, doc in docs
    ]
    # sort_by_parameter_order: the returned rids line up with the rows sent (insertmanyvalues).
    rids = [
        r[0]
        for r in conn.execute(insert(R).returning(R.c.rid, sort_by_parameter_order=True), resource_rows).all()
    ]
    history = [{**row, "rid": rid, "method": "POST"} for row, rid in zip(resource_rows, rids, strict=True)]
    for version in history:
        del version["deleted"]
    index: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    access: list[dict[str, Any]] = []
    for (content, _doc), rid in zip(docs, rids, strict=True):
        for index_row in extract_index_rows(content):
            index[row_table(index_row)].append(row_values(index_row, rid, "Task"))
        # The grants service.referrals.referral makes for the Task of a new referral.
        owner = content["owner"]["reference"].removeprefix("Organization/")
        access.append({"rid": rid, "organization_id": owner, "reason": "owner"})
        access.append({"rid": rid, "organization_id": world.CLINIC, "reason": "requester"})
    _bulk(conn, H, history)
    for model, values in index.items():
        _bulk(conn, model.__table__, values)
    _bulk(conn, A, access)


def _bulk(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """executemany; COPY on PostgreSQL, where it is several times faster."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([orjson.dumps(v).decode() if isinstance(v, dict) else v for v in row.values()])


def seed_tasks(db: Database, total: int, *, start: int = 0) -> float:
    """Add Tasks numbered ``start``..``total-1``; returns the seconds taken."""
    began = time.perf_counter()
    now = datetime.now(UTC)
    for first in range(start, total, BATCH):
        with db.transaction() as conn:
            _insert_batch(conn, first, min(BATCH, total - first), now)
    if db.engine.dialect.name == "postgresql":
        # As autovacuum would soon after a bulk load: current planner statistics and visibility map.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in (
                "resource",
                "resource_history",
                "resource_access",
                "idx_token",
                "idx_reference",
                "idx_date",
            ):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - began


def inbox_matches(total: int) -> int:
    """How many seeded Tasks the searched partner has in ``requested``."""
    return sum(1 for n in range(total) if n % len(world.PARTNERS) == 0 and task_status(n) == "requested")


def task_status(n: int) -> str:
    return STATUSES[(n // len(world.PARTNERS)) % len(STATUSES)]

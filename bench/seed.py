"""Bulk Task seeding for the inbox search: the rows ``ResourceStore.create`` writes, in bulk.

Each Task gets the current-version row, its history row, its index rows and access rows for
its owner and requester (the grants the referral workflow makes). The index rows come from a
builder for this one Task shape rather than from ``extract_index_rows`` (FHIRPath, ~0.2 ms a
Task, most of a million-Task load); every call checks the builder against
``extract_index_rows`` and the store's row-to-table mapping on a few Tasks first, so the
seeded rows stay what the store would write. On PostgreSQL everything goes in with ``COPY``
(rids drawn from the resource sequence up front), large loads rebuild the secondary indexes
afterwards instead of maintaining them row by row, and the tables are vacuumed and analysed
as autovacuum would; on SQLite, executemany. 1M Tasks take a few minutes on PostgreSQL.

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
from sqlalchemy import Connection, Table, insert

from bench import bulk_pg, world
from service.search.extract import extract_index_rows
from service.storage.database import Database
from service.storage.index_rows import row_table, row_values
from service.storage.resources import H, R
from service.storage.tables import IdxDate, IdxReference, IdxToken, ResourceAccess

A: Table = ResourceAccess.__table__  # type: ignore[attr-defined]
REF: Table = IdxReference.__table__  # type: ignore[attr-defined]
TOK: Table = IdxToken.__table__  # type: ignore[attr-defined]
DATE: Table = IdxDate.__table__  # type: ignore[attr-defined]
STATUSES = ("requested", "accepted", "in-progress", "completed")
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
TASK_ID = "https://bench.wraparound.org.uk/Id/task"
SQLITE_BATCH = 5000
PG_BATCH = 20_000
Rows = dict[str, list[tuple[Any, ...]]]  # table name -> rows, in COLUMNS order


def task_status(n: int) -> str:
    return STATUSES[(n // len(world.PARTNERS)) % len(STATUSES)]


def _authored(n: int, now: datetime) -> datetime:
    return (now - timedelta(minutes=n)).replace(microsecond=0)


def task(n: int, now: datetime) -> dict[str, Any]:
    partner = world.PARTNERS[n % len(world.PARTNERS)]
    authored = _authored(n, now).isoformat().replace("+00:00", "Z")
    return {
        "resourceType": "Task",
        "identifier": [{"system": TASK_ID, "value": f"TASK-{n:08d}"}],
        "basedOn": [{"reference": f"ServiceRequest/bench-sr-{n}"}],
        "status": task_status(n),
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/bench-sr-{n}"},
        "for": {"reference": f"Patient/bench-patient-{n}"},
        "authoredOn": authored,
        "lastModified": authored,
        "requester": {"reference": f"Organization/{world.CLINIC}"},
        "owner": {"reference": f"Organization/{partner}"},
    }


# Column order of the rows ``task_rows`` builds, per table.
COLUMNS = {
    "idx_reference": ("rid", "resource_type", "param", "target_type", "target_id", "url", "version"),
    "idx_token": ("rid", "resource_type", "param", "system", "code", "text"),
    "idx_date": ("rid", "resource_type", "param", "low", "high"),
    "resource_access": ("rid", "organization_id", "reason"),
}
RESOURCE_COLUMNS = ("rid", "resource_type", "id", "version_id", "last_updated", "deleted", "content")
HISTORY_COLUMNS = ("rid", "version_id", "resource_type", "id", "last_updated", "method", "content")
ONE_SECOND = timedelta(microseconds=999_999)


def task_rows(n: int, rid: int, now: datetime) -> Rows:
    """The index and access rows of ``task(n, now)`` as tuples in ``COLUMNS`` order (tuples, not
    dicts: this runs a million times for the 1M inbox); ``check_builder`` holds it to the store."""
    partner = world.PARTNERS[n % len(world.PARTNERS)]
    sr, pat = f"bench-sr-{n}", f"bench-patient-{n}"
    low = _authored(n, now)
    high = low + ONE_SECOND
    return {
        "idx_reference": [
            (rid, "Task", "focus", "ServiceRequest", sr, None, None),
            (rid, "Task", "owner", "Organization", partner, None, None),
            (rid, "Task", "requester", "Organization", world.CLINIC, None, None),
            (rid, "Task", "patient", "Patient", pat, None, None),
            (rid, "Task", "subject", "Patient", pat, None, None),
            (rid, "Task", "based-on", "ServiceRequest", sr, None, None),
        ],
        "idx_token": [
            (rid, "Task", "status", None, task_status(n), None),
            (rid, "Task", "code", TASK_CODE, "fulfill", None),
            (rid, "Task", "intent", None, "order", None),
            (rid, "Task", "identifier", TASK_ID, f"TASK-{n:08d}", None),
        ],
        "idx_date": [(rid, "Task", "authored-on", low, high), (rid, "Task", "modified", low, high)],
        "resource_access": [(rid, partner, "owner"), (rid, world.CLINIC, "requester")],
    }


def _canonical(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in rows)


def _as_dicts(name: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS[name], row, strict=True)) for row in rows]


def check_builder(now: datetime, sample: range = range(12)) -> None:
    """Fail loudly if ``task_rows`` no longer matches what the store writes for the same Task."""
    for n in sample:
        expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for index_row in extract_index_rows(task(n, now)):
            table: Table = row_table(index_row).__table__  # type: ignore[attr-defined]
            expected[table.name].append(row_values(index_row, 1, "Task"))
        built = {name: _as_dicts(name, rows) for name, rows in task_rows(n, 1, now).items()}
        for name in (set(expected) | set(built)) - {A.name}:
            if _canonical(expected.get(name, [])) != _canonical(built.get(name, [])):
                raise RuntimeError(
                    f"bench/seed.py task_rows is out of step with extract_index_rows for {name}: "
                    f"expected {expected.get(name)}, built {built.get(name)}"
                )


def _documents(first: int, count: int, now: datetime) -> list[tuple[int, str, str]]:
    """(n, id, stored JSON) for Tasks ``first``..``first+count-1``, stamped as a first version."""
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for n in range(first, first + count):
        resource_id = str(uuid.uuid4())
        content = {**task(n, now), "id": resource_id, "meta": {"versionId": "1", "lastUpdated": stamp}}
        out.append((n, resource_id, orjson.dumps(content).decode()))
    return out


def _index_rows(docs: list[tuple[int, str, str]], rids: list[int], now: datetime) -> Rows:
    tables: Rows = defaultdict(list)
    for (n, _, _), rid in zip(docs, rids, strict=True):
        for name, rows in task_rows(n, rid, now).items():
            tables[name] += rows
    return tables


def _sqlite_batch(conn: Connection, first: int, count: int, now: datetime) -> None:
    docs = _documents(first, count, now)
    resource_rows = [
        {"resource_type": "Task", "id": id_, "version_id": 1, "last_updated": now, "deleted": False,
         "content": orjson.loads(doc)}
        for _, id_, doc in docs
    ]  # fmt: skip
    # sort_by_parameter_order: the returned rids line up with the rows sent (insertmanyvalues).
    inserted = conn.execute(insert(R).returning(R.c.rid, sort_by_parameter_order=True), resource_rows)
    rids = [r[0] for r in inserted.all()]
    history = [
        {k: v for k, v in row.items() if k != "deleted"} | {"rid": rid, "method": "POST"}
        for row, rid in zip(resource_rows, rids, strict=True)
    ]
    conn.execute(insert(H), history)
    for name, rows in _index_rows(docs, rids, now).items():
        conn.execute(insert(TABLES[name]), _as_dicts(name, rows))


def _pg_batch(conn: Connection, first: int, count: int, now: datetime) -> None:
    docs = _documents(first, count, now)
    rids = bulk_pg.take_ids(conn, R, count)
    pairs = list(zip(rids, docs, strict=True))
    bulk_pg.copy(
        conn, R, RESOURCE_COLUMNS, ((rid, "Task", id_, 1, now, False, doc) for rid, (_, id_, doc) in pairs)
    )
    bulk_pg.copy(
        conn, H, HISTORY_COLUMNS, ((rid, 1, "Task", id_, now, "POST", doc) for rid, (_, id_, doc) in pairs)
    )
    for name, rows in _index_rows(docs, rids, now).items():
        bulk_pg.copy(conn, TABLES[name], COLUMNS[name], rows)


TABLES = {t.name: t for t in (REF, TOK, DATE, A)}
SEEDED_TABLES = (R, H, A, REF, TOK, DATE)


def seed_tasks(db: Database, total: int, *, start: int = 0) -> float:
    """Add Tasks numbered ``start``..``total-1``; returns the seconds taken."""
    began = time.perf_counter()
    now = datetime.now(UTC)
    check_builder(now)
    if db.engine.dialect.name != "postgresql":
        for first in range(start, total, SQLITE_BATCH):
            with db.transaction() as conn:
                _sqlite_batch(conn, first, min(SQLITE_BATCH, total - first), now)
        return time.perf_counter() - began
    rebuild = total - start >= bulk_pg.REBUILD_FROM
    with bulk_pg.secondary_indexes_rebuilt(db, SEEDED_TABLES, when=rebuild):
        for first in range(start, total, PG_BATCH):
            with db.transaction() as conn:
                _pg_batch(conn, first, min(PG_BATCH, total - first), now)
        copied = time.perf_counter()
    indexed = time.perf_counter()
    bulk_pg.vacuum_analyze(db, SEEDED_TABLES)
    done = time.perf_counter()
    rebuilt = f", index rebuild {indexed - copied:.0f} s" if rebuild else ""
    print(f"  COPY {copied - began:.0f} s{rebuilt}, VACUUM ANALYZE {done - indexed:.0f} s", flush=True)
    return done - began


def inbox_matches(total: int) -> int:
    """How many seeded Tasks the searched partner has in ``requested``."""
    return sum(1 for n in range(total) if n % len(world.PARTNERS) == 0 and task_status(n) == "requested")

"""BulkInsert (storage/bulk.py) stores what SQLAlchemy Core stores, on the real test database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select

from service.storage import bulk, resources
from service.storage.bulk import BulkInsert
from service.storage.database import Database
from service.storage.engine import make_engine
from service.storage.resources import R
from service.storage.tables import IdxDate

D = IdxDate.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
COLUMNS = ("resource_type", "id", "version_id", "last_updated", "deleted", "content")


def _row(i: int) -> tuple[Any, ...]:
    doc = {"resourceType": "Basic", "id": f"b{i}", "code": {"text": 'é ☃ "quoted"'}, "n": [i, 1.5, None]}
    return ("Basic", f"b{i}", 1, T0 + timedelta(seconds=i), i % 2 == 0, doc)


def _stored(db: Database, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each row as the database holds it: the raw driver values and what Core reads back."""
    with db.transaction(write=False) as conn:
        raw = conn.exec_driver_sql(
            "SELECT id, resource_type, version_id, last_updated, deleted, content FROM resource"
        ).all()
        core = conn.execute(select(*(R.c[c] for c in COLUMNS)).where(R.c.id.in_(ids))).all()
    by_id = {r[0]: tuple(r) for r in raw if r[0] in ids}
    return {row.id: (by_id[row.id], tuple(row)) for row in core}


def test_rows_are_stored_exactly_as_core_stores_them(clean_database: Database) -> None:
    core_ids, bulk_ids = ["c0", "c1"], ["b0", "b1"]
    with clean_database.transaction() as conn:
        for i, rid in enumerate(core_ids):
            conn.execute(insert(R).values(dict(zip(COLUMNS, (*_row(i)[:1], rid, *_row(i)[2:]), strict=True))))
        rows = BulkInsert(R, COLUMNS, returning=("rid", "id"))
        returned = rows.execute(conn, [rows.process(conn.dialect, _row(i)) for i in range(2)])
    assert sorted(r[1] for r in returned) == bulk_ids
    assert all(isinstance(r[0], int) for r in returned)
    core = _stored(clean_database, core_ids)
    made = _stored(clean_database, bulk_ids)
    for i in range(2):
        (core_raw, core_read), (bulk_raw, bulk_read) = core[f"c{i}"], made[f"b{i}"]
        # Same driver-level value in every column but the id: timestamp text or timestamptz, JSON, boolean.
        assert bulk_raw[1:] == core_raw[1:]
        assert bulk_read[2:] == core_read[2:] == _row(i)[2:]
        assert bulk_read[3].tzinfo is not None


def test_null_values_pass_without_a_processor(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        rows = BulkInsert(R, COLUMNS, returning=("rid", "id"))
        rows.execute(conn, [rows.process(conn.dialect, ("Basic", "gone", 2, T0, True, None))])
    with clean_database.transaction(write=False) as conn:
        content = conn.execute(select(R.c.content).where(R.c.id == "gone")).scalar_one()
    assert content is None


def test_more_rows_than_one_statement_takes_are_split(
    clean_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five columns and at most ten parameters: two rows per statement, so 7 rows take 4 statements.
    monkeypatch.setattr(bulk, "MAX_PARAMETERS", 10)
    rows = BulkInsert(D, ("rid", "resource_type", "param", "low", "high"), returning=("pk",))
    assert rows.rows_per_statement == 2
    values = [(i, "Basic", "date", T0, T0 + timedelta(days=i)) for i in range(7)]
    inserts: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement)

    with clean_database.transaction() as conn:
        conn.execute(delete(D))
        event.listen(conn, "before_cursor_execute", count)
        returned = rows.execute(conn, [rows.process(conn.dialect, v) for v in values])
        event.remove(conn, "before_cursor_execute", count)
        stored = conn.execute(select(D.c.rid, D.c.low, D.c.high).order_by(D.c.rid)).all()
    assert len(returned) == 7
    assert [q.count("), (") + 1 for q in inserts] == [2, 2, 2, 1]
    assert [tuple(r) for r in stored] == [(v[0], v[3], v[4]) for v in values]


def test_a_row_of_the_wrong_width_is_refused(clean_database: Database) -> None:
    rows = BulkInsert(R, COLUMNS)
    with (
        clean_database.transaction() as conn,
        pytest.raises(ValueError, match="2 values for the 6 columns of resource"),
    ):
        rows.process(conn.dialect, ("Basic", "short"))


@pytest.mark.postgres
def test_on_postgresql_a_multi_row_insert_is_sent_numbered(
    postgres_database: Database, raw_statements: list[str]
) -> None:
    # Ten rows of six columns: 60 parameters, more than psycopg keeps its own rewrite for.
    ids = [f"b{i}" for i in range(10)]
    with postgres_database.transaction() as conn:
        rows = BulkInsert(R, COLUMNS, returning=("rid", "id"))
        returned = rows.execute(conn, [rows.process(conn.dialect, _row(i)) for i in range(10)])
    assert sorted(r[1] for r in returned) == sorted(ids)
    assert len(raw_statements) == 1
    assert "$60)" in raw_statements[0]
    assert "%s" not in raw_statements[0]
    made = _stored(postgres_database, ids)
    assert [made[f"b{i}"][1][2:] for i in range(10)] == [_row(i)[2:] for i in range(10)]


# The engines' own dialects, with their JSON serialiser: BulkInsert keeps one set of processors per
# dialect name, whichever Connection asked first, so a bare dialect here would compare orjson's text
# with the standard library's whenever another test had already used the engine.
_DIALECTS = [make_engine("sqlite://").dialect, make_engine("postgresql://nobody@127.0.0.1:1/none").dialect]


@pytest.mark.parametrize("dialect", _DIALECTS, ids=["sqlite", "postgresql"])
def test_a_history_row_may_reuse_its_resource_rows_processed_values(dialect: Any) -> None:
    """ResourceStore._create_rows gives the history row the resource row's processed timestamp and
    document instead of processing them again: that holds while the columns' processors agree."""
    doc = _row(3)[5]
    resource = resources._RESOURCE_ROWS.process(dialect, ("Basic", "b3", 1, T0, False, doc))
    history = resources._HISTORY_ROWS.process(dialect, (7, 1, "Basic", "b3", T0, "POST", doc))
    reused = (7, 1, "Basic", "b3", resource[3], "POST", resource[5])
    assert [_comparable(v) for v in history] == [_comparable(v) for v in reused]


def _comparable(value: Any) -> Any:
    # psycopg's Jsonb wrapper has no equality of its own: compare its type and what it wraps.
    return (type(value), value.obj) if hasattr(value, "obj") else value

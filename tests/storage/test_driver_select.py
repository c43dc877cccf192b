"""DriverSelect (storage/driverselect.py) returns what the same Core statement returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection

from service.search.extract import extract_index_rows
from service.storage import access
from service.storage.database import Database
from service.storage.driverselect import DriverSelect
from service.storage.resources import _SELECT_CURRENT, _SELECT_CURRENT_GRANTED, ResourceStore

NOW = datetime.now(UTC)
PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Ödön", "given": ["Zoë"]}],
    "birthDate": "1980-02-03",
    "extension": [{"url": "http://x", "valueDecimal": 1.25}],
}


def _core(conn: Connection, statement: Any, values: dict[str, Any]) -> tuple[Any, ...] | None:
    row = conn.execute(statement, values).first()
    return tuple(row) if row is not None else None


@pytest.mark.parametrize(
    ("valid_until", "granted"),
    [(None, True), (NOW + timedelta(days=1), True), (NOW - timedelta(seconds=1), False), ("none", False)],
)
def test_a_read_with_its_grant_matches_core(
    clean_database: Database, valid_until: Any, granted: bool
) -> None:
    with clean_database.transaction() as conn:
        stored = ResourceStore(conn).create("Patient", PATIENT, extract_index_rows(PATIENT), now=NOW)
        if valid_until != "none":
            access.grant(conn, stored.rid, "org-a", "test", valid_until=valid_until)
    values = {"rtype": "Patient", "rid_": stored.id, "org": "org-a"}
    with clean_database.transaction(write=False) as conn:
        core = _core(conn, _SELECT_CURRENT_GRANTED, values)
        driver = DriverSelect(_SELECT_CURRENT_GRANTED).first(conn, values)
        via_store = ResourceStore(conn).current_with_access("Patient", stored.id, "org-a")
    assert core is not None
    assert driver is not None
    assert driver[:7] == core[:7]
    assert bool(driver[7]) is bool(core[7]) is granted
    assert driver[4] == NOW
    assert driver[4].tzinfo is not None
    assert driver[6] == stored.content  # content: the JSON document, parsed
    assert via_store == (stored, granted)


def test_a_missing_row_is_none(clean_database: Database) -> None:
    with clean_database.transaction(write=False) as conn:
        assert DriverSelect(_SELECT_CURRENT).first(conn, {"rtype": "Patient", "rid_": "nope"}) is None
        assert ResourceStore(conn).current("Patient", "nope") is None
        assert ResourceStore(conn).current_with_access("Patient", "nope", "org-a") == (None, False)


def test_a_deleted_resource_reads_as_its_tombstone(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        stored = store.create("Patient", PATIENT, extract_index_rows(PATIENT), now=NOW)
        gone = store.delete(stored, now=NOW + timedelta(seconds=1))
    with clean_database.transaction(write=False) as conn:
        core = _core(conn, _SELECT_CURRENT, {"rtype": "Patient", "rid_": stored.id})
        current = ResourceStore(conn).current("Patient", stored.id)
    assert current == gone
    assert current is not None
    assert current.deleted is True
    assert current.content is None
    assert core is not None
    assert core[5] in (True, 1)


def test_literal_values_and_several_rows_come_back_as_core_returns_them(clean_database: Database) -> None:
    from sqlalchemy import or_, select

    from service.storage.resources import COLUMNS, R

    with clean_database.transaction() as conn:
        store = ResourceStore(conn)
        made = [store.create("Patient", PATIENT, extract_index_rows(PATIENT), now=NOW) for _ in range(3)]
        store.create("Basic", {"resourceType": "Basic"}, [], now=NOW)
    # Literals bound in the statement (the type, two ids), no caller values at all.
    statement = (
        select(*COLUMNS)
        .where(R.c.resource_type == "Patient", or_(R.c.id == made[0].id, R.c.id == made[2].id))
        .order_by(R.c.rid)
    )
    with clean_database.transaction(write=False) as conn:
        core = [tuple(r) for r in conn.execute(statement).all()]
        driver = DriverSelect(statement).all(conn, {})
    assert driver == core
    assert [row[2] for row in driver] == [made[0].id, made[2].id]


def test_an_expanding_in_is_refused_rather_than_sent_half_compiled(clean_database: Database) -> None:
    from sqlalchemy import select

    from service.storage.resources import R

    with clean_database.transaction(write=False) as conn, pytest.raises(ValueError, match="expanding IN"):
        DriverSelect(select(R.c.rid).where(R.c.id.in_(["a", "b"]))).all(conn, {})


def test_a_named_parameter_built_with_a_value_takes_the_value_it_is_given(clean_database: Database) -> None:
    # storage/search_sql.py keeps a search's statement, built with the first search's values, and
    # runs it with the next one's: a given value wins over the one written in, a missing one falls back.
    from sqlalchemy import bindparam, select

    from service.storage.resources import COLUMNS, R

    with clean_database.transaction() as conn:
        first = ResourceStore(conn).create("Patient", PATIENT, extract_index_rows(PATIENT), now=NOW)
        second = ResourceStore(conn).create("Patient", PATIENT, extract_index_rows(PATIENT), now=NOW)
    statement = select(*COLUMNS).where(R.c.resource_type == "Patient", R.c.id == bindparam("pid", first.id))
    kept = DriverSelect(statement)
    with clean_database.transaction(write=False) as conn:
        assert [row[2] for row in kept.all(conn, {})] == [first.id]
        assert [row[2] for row in kept.all(conn, {"pid": second.id})] == [second.id]
        assert kept.all(conn, {"pid": "nobody"}) == []

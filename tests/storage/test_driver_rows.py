"""storage/driver.rows: the cursor itself on the hot path, the Connection's behaviour around it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from service.storage import driver
from service.storage.database import Database


def _mark(conn: Connection) -> str:
    return driver.mark(conn.dialect.name)


def _refuse_exec_driver_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("went through exec_driver_sql")

    monkeypatch.setattr(Connection, "exec_driver_sql", refused)


def test_inside_a_transaction_it_runs_on_the_cursor(
    clean_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with clean_database.transaction(write=False) as conn:
        _refuse_exec_driver_sql(monkeypatch)
        found = driver.rows(conn, f"SELECT {_mark(conn)} + 1, 'x'", (41,))
    assert found == [(42, "x")]


def test_a_driver_error_is_wrapped_as_the_connection_would_wrap_it(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE t (k INTEGER PRIMARY KEY)"))
        driver.rows(conn, f"INSERT INTO t (k) VALUES ({_mark(conn)})", (1,))
        with pytest.raises(IntegrityError) as caught:
            driver.rows(conn, f"INSERT INTO t (k) VALUES ({_mark(conn)})", (1,))
        # Parameters stay out of the message (hide_parameters): they can be patient data.
        assert "hidden" in str(caught.value)
        conn.rollback()


def test_a_bad_statement_is_a_sqlalchemy_error_too(clean_database: Database) -> None:
    # SQLite calls a missing table an OperationalError, PostgreSQL a ProgrammingError: both DBAPIErrors.
    with pytest.raises(DBAPIError) as caught, clean_database.transaction(write=False) as conn:
        driver.rows(conn, "SELECT * FROM no_such_table", ())
    assert isinstance(caught.value, OperationalError | ProgrammingError)


def test_listeners_still_see_every_statement(clean_database: Database) -> None:
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with clean_database.transaction(write=False) as conn:
        event.listen(conn, "before_cursor_execute", listen)
        assert driver.rows(conn, "SELECT 7", ()) == [(7,)]
        event.remove(conn, "before_cursor_execute", listen)
    assert seen == ["SELECT 7"]


def test_outside_a_transaction_the_connection_begins_one(
    clean_database: Database,
) -> None:
    with clean_database.engine.connect() as conn:
        assert not conn.in_transaction()
        assert driver.rows(conn, "SELECT 1", ()) == [(1,)]
        assert conn.in_transaction()  # autobegun, so a write here would not commit on its own
        conn.rollback()


@pytest.mark.postgres
def test_a_raw_statement_goes_to_postgresql_as_written(
    postgres_database: Database, raw_statements: list[str]
) -> None:
    # 60 parameters: past the 50 for which psycopg keeps its own rewrite of a %s statement.
    values = tuple(range(60))
    sql = "SELECT " + ", ".join(["%s::int"] * 60)
    numbered = "SELECT " + ", ".join(f"{m}::int" for m in driver.numbered(60))
    with postgres_database.transaction(write=False) as conn:
        found = driver.rows(conn, sql, values, raw=numbered)
    assert found == [values]
    assert raw_statements == [numbered]


@pytest.mark.postgres
def test_a_raw_statement_error_is_wrapped_too(postgres_database: Database) -> None:
    with postgres_database.transaction() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE t (k INTEGER PRIMARY KEY)"))
        driver.rows(conn, "INSERT INTO t (k) VALUES (%s)", (1,), raw="INSERT INTO t (k) VALUES ($1)")
        with pytest.raises(IntegrityError) as caught:
            driver.rows(conn, "INSERT INTO t (k) VALUES (%s)", (1,), raw="INSERT INTO t (k) VALUES ($1)")
        assert "hidden" in str(caught.value)
        conn.rollback()


@pytest.mark.postgres
def test_listeners_see_the_statement_not_its_raw_form(
    postgres_database: Database, raw_statements: list[str]
) -> None:
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with postgres_database.transaction(write=False) as conn:
        event.listen(conn, "before_cursor_execute", listen)
        assert driver.rows(conn, "SELECT %s::int", (7,), raw="SELECT $1::int") == [(7,)]
        event.remove(conn, "before_cursor_execute", listen)
    assert seen == ["SELECT %s::int"]
    assert raw_statements == []


def _table(conn: Connection) -> None:
    conn.execute(text("CREATE TEMPORARY TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))


def test_run_all_runs_every_statement_in_order(clean_database: Database) -> None:
    with clean_database.transaction() as conn:
        _table(conn)
        m = _mark(conn)
        raw = "INSERT INTO t (k, v) VALUES ($1, $2), ($3, $4)" if conn.dialect.name == "postgresql" else None
        driver.run_all(
            conn,
            [
                (f"INSERT INTO t (k, v) VALUES ({m}, {m}), ({m}, {m})", (1, "a", 2, "b"), raw),
                (f"DELETE FROM t WHERE k = {m}", (1,), None),
                (f"UPDATE t SET v = {m} WHERE k = {m}", ("c", 2), None),
            ],
        )
        assert driver.rows(conn, "SELECT k, v FROM t ORDER BY k", ()) == [(2, "c")]
        conn.rollback()


@pytest.mark.postgres
def test_on_postgresql_run_all_is_one_pipeline(postgres_database: Database, pipelines: list[int]) -> None:
    with postgres_database.transaction() as conn:
        _table(conn)
        driver.run_all(
            conn,
            [
                ("INSERT INTO t (k, v) VALUES (%s, %s)", (1, "a"), "INSERT INTO t (k, v) VALUES ($1, $2)"),
                ("INSERT INTO t (k, v) VALUES (%s, %s)", (2, "b"), None),
            ],
        )
        assert pipelines == [1]
        assert driver.rows(conn, "SELECT count(*) FROM t", ()) == [(2,)]
        conn.rollback()


@pytest.mark.postgres
def test_a_failure_in_the_pipeline_is_wrapped_and_the_rest_not_run(
    postgres_database: Database, pipelines: list[int]
) -> None:
    with postgres_database.transaction() as conn:
        _table(conn)
        driver.rows(conn, "INSERT INTO t (k, v) VALUES (%s, %s)", (1, "secret"))
        with pytest.raises(IntegrityError) as caught:
            driver.run_all(
                conn,
                [
                    ("INSERT INTO t (k, v) VALUES (%s, %s)", (2, "b"), None),
                    ("INSERT INTO t (k, v) VALUES (%s, %s)", (1, "secret"), None),
                    ("INSERT INTO t (k, v) VALUES (%s, %s)", (3, "c"), None),
                ],
            )
        assert pipelines == [1]
        assert "secret" not in str(caught.value)
        assert "hidden" in str(caught.value)
        conn.rollback()


@pytest.mark.postgres
def test_with_a_listener_run_all_runs_each_statement_where_it_sees_it(
    postgres_database: Database, pipelines: list[int]
) -> None:
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with postgres_database.transaction() as conn:
        _table(conn)
        event.listen(conn, "before_cursor_execute", listen)
        driver.run_all(conn, [("SELECT %s::int", (1,), "SELECT $1::int"), ("SELECT 2", (), None)])
        event.remove(conn, "before_cursor_execute", listen)
        conn.rollback()
    assert seen == ["SELECT %s::int", "SELECT 2"]
    assert pipelines == []

"""Real database conditions for the audit writer's tests, on SQLite and PostgreSQL alike.

``refused_audit`` makes every AuditEvent insert fail inside the database (a trigger: on
PostgreSQL a deferred constraint trigger, so the failure comes at COMMIT, as a full disk or a
lost connection would). ``writes_held`` holds the database's write side the way a long
transaction would, so the writer's next batch waits while requests queue behind it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event, text

from service.access.caller import Caller
from service.audit import record
from service.storage.database import Database
from service.storage.resources import Stored

CALLER = Caller(
    client_id="audit-test-client", organization_id="audit-test", role="clinic", scopes="system/*.rs", jti="j"
)


def read_event(patient_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    stored = Stored(0, "Patient", patient_id, 1, now, False, None)
    return record.build_event(caller=CALLER, action="read", now=now, status=200, entities=[stored])


def _postgres(database: Database) -> bool:
    return database.engine.dialect.name == "postgresql"


@contextmanager
def refused_audit(database: Database) -> Iterator[None]:
    with database.transaction() as conn:
        if _postgres(database):
            conn.execute(
                text(
                    "CREATE FUNCTION audit_refused() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE CONSTRAINT TRIGGER audit_refused AFTER INSERT ON resource "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    "WHEN (NEW.resource_type = 'AuditEvent') EXECUTE FUNCTION audit_refused()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER audit_refused BEFORE INSERT ON resource "
                    "WHEN NEW.resource_type = 'AuditEvent' "
                    "BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END"
                )
            )
    try:
        yield
    finally:
        with database.transaction() as conn:
            conn.execute(text("DROP TRIGGER audit_refused" + (" ON resource" if _postgres(database) else "")))
            if _postgres(database):
                conn.execute(text("DROP FUNCTION audit_refused()"))


@contextmanager
def writes_held(database: Database) -> Iterator[None]:
    # SQLite: this process's writer lock and the database's write lock, as any write transaction
    # holds them. PostgreSQL: a table lock that INSERTs wait for and plain SELECTs do not.
    with database.transaction() as conn:
        if _postgres(database):
            conn.execute(text("LOCK TABLE resource IN EXCLUSIVE MODE"))
        yield


@contextmanager
def write_commits(engine: Engine) -> Iterator[list[int]]:
    """Counts commits of write transactions on ``engine`` (the list's one item) while open. On
    PostgreSQL reads run on an engine of their own (ADR 0021), so every commit on this one is a write's."""
    count = [0]

    def _commit(conn: Any) -> None:
        if engine.dialect.name != "sqlite" or conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE":
            count[0] += 1

    event.listen(engine, "commit", _commit)
    try:
        yield count
    finally:
        event.remove(engine, "commit", _commit)


def wait_for(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Poll until ``condition`` holds (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)

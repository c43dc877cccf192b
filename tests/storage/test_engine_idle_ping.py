"""PostgreSQL connections are pinged only after sitting idle in the pool (storage/engine.py): one
the server dropped meanwhile is replaced on checkout, so the request never sees it."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from service.storage import engine as engine_module
from service.storage.database import Database

pytestmark = pytest.mark.postgres


def test_a_connection_dropped_while_idle_is_replaced_on_checkout(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip(
            "PostgreSQL only: SQLite has no server to drop a connection (CI runs the PostgreSQL suite)"
        )
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = Database(database_url)
        with admin.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        admin.dispose()
        monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)  # every pooled connection is "idle"
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        db.dispose()


def test_a_busy_pool_is_not_pinged(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (CI runs the PostgreSQL suite)")
    db = Database(database_url)
    statements: list[str] = []
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

        @event.listens_for(db.engine, "before_cursor_execute")
        def _seen(_c: object, _cur: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        for _ in range(5):
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 2"))
        assert statements == ["SELECT 2"] * 5  # no ping statement went through SQLAlchemy either
    finally:
        db.dispose()

"""The idx_reference indexes as migrated (alembic's model comparison does not look at index predicates)."""

from __future__ import annotations

from sqlalchemy import text

from service.storage.database import Database


def _definitions(database: Database) -> dict[str, str]:
    with database.transaction(write=False) as conn:
        if database.dialect == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'idx_reference'"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'idx_reference'"
        return {name: sql or "" for name, sql in conn.execute(text(query)).all()}


def test_the_url_index_holds_only_references_that_have_a_url(database: Database) -> None:
    definition = _definitions(database)["ix_idx_reference_url"]
    assert "(resource_type, param, url, rid)" in definition
    assert "WHERE" in definition
    assert "url IS NOT NULL" in definition.replace("(", "").replace(")", "")


def test_no_index_leads_with_the_target_alone(database: Database) -> None:
    # Every query on idx_reference names resource_type and param (migration 0008).
    names = set(_definitions(database))
    assert "ix_idx_reference_reverse" not in names
    assert {"ix_idx_reference_lookup", "ix_idx_reference_rid"} <= names

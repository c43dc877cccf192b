"""ix_idx_reference_url only over rows that have a url

Most references are relative (Type/id) and index with url NULL, yet each such row still went into
the (resource_type, param, url, rid) index: on SQLite 12 % of the WAL pages a referral wrote
(docs/PERFORMANCE.md). A search by url compares url = ..., which implies url IS NOT NULL, so SQLite
and PostgreSQL use the partial index for it as before.

On a large PostgreSQL database the new index is built once, during the migration, with writes to
idx_reference blocked while it builds.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ["resource_type", "param", "url", "rid"]


def upgrade() -> None:
    op.drop_index("ix_idx_reference_url", table_name="idx_reference")
    where = sa.text("url IS NOT NULL")
    op.create_index(
        "ix_idx_reference_url", "idx_reference", _COLUMNS, sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index("ix_idx_reference_url", table_name="idx_reference")
    op.create_index("ix_idx_reference_url", "idx_reference", _COLUMNS)

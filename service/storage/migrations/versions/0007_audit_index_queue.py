"""audit index queue: AuditEvents whose search index rows are written later, in bulk (ADR 0015)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.storage.tables import RowId

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_index_queue",
        sa.Column("rid", RowId, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("rid"),
    )


def downgrade() -> None:
    op.drop_table("audit_index_queue")

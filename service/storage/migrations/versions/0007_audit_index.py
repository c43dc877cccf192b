"""AuditEvent search values in their own compact tables (docs/adr/0017-audit-index.md)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 20:20:00

AuditEvents written before this keep their rows in the generic index tables, where the search
still finds them (service/storage/audit_index.py reads both): nothing is copied.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from service.storage.tables import RowId, UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENS = ("type", "subtype", "action", "outcome", "altid")


def upgrade() -> None:
    op.create_table(
        "audit_index",
        sa.Column("rid", RowId, autoincrement=False, nullable=False),
        sa.Column("date_low", UtcDateTime(), nullable=True),
        sa.Column("date_high", UtcDateTime(), nullable=True),
        *[
            sa.Column(f"{param}_{field}", AutoString(), nullable=True)
            for param in _TOKENS
            for field in ("system", "code", "text")
        ],
        sa.Column("agent_target_type", AutoString(length=64), nullable=True),
        sa.Column("agent_target_id", AutoString(length=64), nullable=True),
        sa.Column("agent_url", AutoString(), nullable=True),
        sa.Column("agent_version", AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("rid"),
    )
    op.create_index("ix_audit_index_date", "audit_index", ["date_low", "date_high"], unique=False)
    op.create_index("ix_audit_index_altid", "audit_index", ["altid_code"], unique=False)
    op.create_index(
        "ix_audit_index_agent", "audit_index", ["agent_target_id", "agent_target_type"], unique=False
    )
    op.create_table(
        "audit_entity",
        sa.Column("param", AutoString(length=64), nullable=False),
        sa.Column("target_id", AutoString(length=64), nullable=False),
        sa.Column("target_type", AutoString(length=64), nullable=False),
        sa.Column("rid", RowId, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("param", "target_id", "target_type", "rid"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("audit_entity")
    op.drop_index("ix_audit_index_agent", table_name="audit_index")
    op.drop_index("ix_audit_index_altid", table_name="audit_index")
    op.drop_index("ix_audit_index_date", table_name="audit_index")
    op.drop_table("audit_index")

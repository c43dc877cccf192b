"""delivery worker: outbox leases and fencing, delivery attempts, encrypted endpoint configuration

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 08:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from service.storage.tables import RowId, UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("message_id", AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("lease_owner", AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("fence", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("finished_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("endpoint_id", AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("adapter", AutoString(length=64), nullable=True))
        batch.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_error", AutoString(length=300), nullable=True))
        batch.create_index("ix_outbox_stream", ["organization_id", "focus", "id"], unique=False)
    # Rows queued before this migration get a stable idempotency key of their own.
    op.execute("UPDATE outbox SET message_id = 'msg_' || CAST(id AS VARCHAR(20)) WHERE message_id IS NULL")
    op.create_table(
        "delivery_attempt",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("outbox_id", RowId, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", AutoString(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", AutoString(length=300), nullable=True),
        sa.Column("worker", AutoString(length=64), nullable=False),
        sa.Column("endpoint_id", AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_attempt_outbox", "delivery_attempt", ["outbox_id", "id"], unique=False)
    op.create_table(
        "endpoint_config",
        sa.Column("endpoint_id", AutoString(length=64), nullable=False),
        sa.Column("adapter", AutoString(length=64), nullable=False),
        sa.Column("ciphertext", AutoString(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id"),
    )


def downgrade() -> None:
    op.drop_table("endpoint_config")
    op.drop_index("ix_delivery_attempt_outbox", table_name="delivery_attempt")
    op.drop_table("delivery_attempt")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_stream")
        for column in (
            "last_error",
            "last_status",
            "adapter",
            "endpoint_id",
            "finished_at",
            "fence",
            "lease_until",
            "lease_owner",
            "message_id",
        ):
            batch.drop_column(column)

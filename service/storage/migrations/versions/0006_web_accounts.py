"""web app accounts: people, their recovery codes, sessions and failed sign-ins

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from service.storage.tables import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_user",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("email", AutoString(length=320), nullable=False),
        sa.Column("organization_id", AutoString(length=64), nullable=False),
        sa.Column("role", AutoString(length=16), nullable=False),
        sa.Column("password_hash", AutoString(length=255), nullable=False),
        sa.Column("totp_secret", AutoString(), nullable=False),
        sa.Column("totp_last_step", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email", name="uq_web_user_email"),
    )
    op.create_table(
        "web_recovery_code",
        sa.Column("user_id", AutoString(length=32), nullable=False),
        sa.Column("code_hash", AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "code_hash"),
    )
    op.create_table(
        "web_session",
        sa.Column("token_hash", AutoString(length=64), nullable=False),
        sa.Column("user_id", AutoString(length=32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_session_user", "web_session", ["user_id"], unique=False)
    op.create_table(
        "web_signin_failure",
        sa.Column("email_hash", AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email_hash"),
    )


def downgrade() -> None:
    op.drop_table("web_signin_failure")
    op.drop_index("ix_web_session_user", table_name="web_session")
    op.drop_table("web_session")
    op.drop_table("web_recovery_code")
    op.drop_table("web_user")

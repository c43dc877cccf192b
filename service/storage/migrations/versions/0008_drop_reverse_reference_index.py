"""drop ix_idx_reference_reverse: no query needs it, and every reference row paid a B-tree page for it

Every search, _include, _revinclude and referral lookup on idx_reference names its resource_type and
param, which ix_idx_reference_lookup (resource_type, param, target_id, target_type, rid) leads with.
The (target_type, target_id) index served none of them alone. Each reference row a write inserts
touched one more B-tree (a random leaf, since ids are UUIDs), and on SQLite one more page in the WAL
(docs/PERFORMANCE.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_idx_reference_reverse", table_name="idx_reference")


def downgrade() -> None:
    op.create_index("ix_idx_reference_reverse", "idx_reference", ["target_type", "target_id"], unique=False)

"""sample soft labels

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 19:30:00

An accepted sample's soft labels (the teacher's top-k log-probabilities per token, packed) wait in
the samples table until the flusher writes them to a soft-label shard beside the text shard, then the
column is cleared. Null for every sample of a job without soft labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("samples", sa.Column("soft_labels", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("soft_labels")

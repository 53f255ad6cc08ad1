"""unflushed samples index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:00:00

The flusher asks, many times a second, how many samples of a job await a shard and reads them in id
order. Those conditions sit after the completion text in a sample's row, so without this index every
question read every sample of the job, text included (on SQLite, its overflow pages). The partial index
holds only samples not yet in a shard, so it stays as small as the backlog. It has shard_id too,
always null in it: SQLite checks a partial index's condition against the table row unless the index
holds the column, and these counts must not touch the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFLUSHED = sa.text("shard_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.create_index(
            "ix_samples_unflushed",
            ["job_id", "accepted", "id", "created_at", "shard_id"],
            sqlite_where=UNFLUSHED,
            postgresql_where=UNFLUSHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.drop_index("ix_samples_unflushed", sqlite_where=UNFLUSHED, postgresql_where=UNFLUSHED)

"""shard backlog

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 00:30:00

Samples awaiting a shard are listed in a table of their own, ``shard_backlog`` (job, kind, sample id,
commit time), instead of being marked with ``samples.shard_id`` once written. Marking a sample was an
UPDATE of its row: on SQLite that rewrites the whole row, text included (in the bench's realistic
regime, 14 KB a sample and about 0.09 ms of the API's CPU per sample), and on PostgreSQL it adds an
entry to every index of the samples table. A backlog row is written in the transaction that commits
its sample and deleted in the one that records its shard.

Upgrade lists every sample not yet in a shard, then drops ``shard_id`` with its indexes (on SQLite by
rebuilding the table, with foreign keys off; see ``migrations/env.py``). Downgrade brings the column
back: a sample not in the backlog gets the first shard of its job and kind, since which shard holds
it was never kept apart from this column; that is all the flusher of that revision asks of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNFLUSHED = sa.text("shard_id IS NULL")


def upgrade() -> None:
    op.create_table(
        "shard_backlog",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("sample_id", ID, autoincrement=False, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_shard_backlog_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "accepted", "sample_id", name=op.f("pk_shard_backlog")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO shard_backlog (job_id, accepted, sample_id, created_at) "
        "SELECT job_id, accepted, id, created_at FROM samples WHERE shard_id IS NULL"
    )
    with op.batch_alter_table("samples") as batch:
        batch.drop_index("ix_samples_unflushed", sqlite_where=UNFLUSHED, postgresql_where=UNFLUSHED)
        batch.drop_index("ix_samples_shard_id")
        batch.drop_constraint("fk_samples_shard_id_shards", type_="foreignkey")
        batch.drop_column("shard_id")


def downgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("shard_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_samples_shard_id_shards", "shards", ["shard_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_samples_shard_id", ["shard_id"])
        batch.create_index(
            "ix_samples_unflushed",
            ["job_id", "accepted", "id", "created_at", "shard_id"],
            sqlite_where=UNFLUSHED,
            postgresql_where=UNFLUSHED,
        )
    op.execute(
        "UPDATE samples SET shard_id = (SELECT min(shards.id) FROM shards WHERE shards.job_id = samples.job_id "
        "AND shards.kind = CASE WHEN samples.accepted THEN 'accepted' ELSE 'rejected' END) "
        "WHERE NOT EXISTS (SELECT 1 FROM shard_backlog WHERE shard_backlog.sample_id = samples.id)"
    )
    op.drop_table("shard_backlog")

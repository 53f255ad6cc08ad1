"""prompt metadata, verifier costs

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 20:00:00

A prompt may carry a ``metadata`` object (a scorer's own fields, such as reasoning-gym's entry), which
verifiers see with each of its samples: ``tasks.prompt_metadata``. ``verifier_costs`` keeps, per job
and verifier, the time its verdicts took, how many there were and, for a verifier that asks a model
(a judge), that model and its tokens; added to by the transaction that commits the verdicts, as
``verdict_counts`` is. Jobs from before have no costs recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_metadata", sa.JSON(), nullable=True))
    op.create_table(
        "verifier_costs",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("verifier", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("verdicts", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_verifier_costs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "verifier", "model", name=op.f("pk_verifier_costs")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("verifier_costs")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("prompt_metadata")

"""verdict counts per job

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 08:30:00

A job's status shows each verifier's acceptance and the rejection reasons with their counts; the
sample browser's filter menu lists the reasons. Both were aggregated over all the job's verdicts on
every request (7 ms at 4,000 samples; a job of 600,000 prompts has millions of verdicts, and the UI
asks every few seconds), through two indexes on ``verdicts`` that every verdict row paid for.
``verdict_counts`` keeps those numbers instead, one row per job, verifier, outcome and reason (``""``
where a verdict gave none), added to by the transaction that commits the verdicts. With them go the
two indexes and ``verdicts.job_id``, which only they used: a verdict belongs to its sample.

Upgrade counts the verdicts already there. Downgrade restores the column from each verdict's sample,
and the indexes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_verdicts_job_id_reason", ["job_id", "reason"]),
    ("ix_verdicts_job_id_verifier_accepted", ["job_id", "verifier", "accepted"]),
)


def upgrade() -> None:
    op.create_table(
        "verdict_counts",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("verifier", sa.String(length=64), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_verdict_counts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "verifier", "accepted", "reason", name=op.f("pk_verdict_counts")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO verdict_counts (job_id, verifier, accepted, reason, samples) "
        "SELECT samples.job_id, verdicts.verifier, verdicts.accepted, COALESCE(verdicts.reason, ''), count(*) "
        "FROM verdicts JOIN samples ON samples.id = verdicts.sample_id "
        "GROUP BY samples.job_id, verdicts.verifier, verdicts.accepted, COALESCE(verdicts.reason, '')"
    )
    with op.batch_alter_table("verdicts") as batch:
        for name, _ in INDEXES:
            batch.drop_index(name)
        batch.drop_column("job_id")


def downgrade() -> None:
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(sa.Column("job_id", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE verdicts SET job_id = (SELECT job_id FROM samples WHERE samples.id = verdicts.sample_id)"
    )
    with op.batch_alter_table("verdicts") as batch:
        batch.alter_column("job_id", existing_type=sa.String(length=32), nullable=False)
        for name, columns in INDEXES:
            batch.create_index(name, columns)
    op.drop_table("verdict_counts")

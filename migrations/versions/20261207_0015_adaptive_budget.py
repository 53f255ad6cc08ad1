"""adaptive sample budget

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 13:00:00

A job with an adaptive budget keeps the samples no prompt has reserved yet beyond its first round
(``jobs.extra_samples_left``), and each prompt what it reserved from it (``tasks.extra_reserved``), so
that a retried prompt spends its own reservation again rather than a second one. Null for other jobs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_samples_left", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_reserved", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("extra_reserved")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("extra_samples_left")

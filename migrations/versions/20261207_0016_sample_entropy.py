"""sample entropy

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 13:30:00

``samples.entropy``: the teacher's mean token entropy over its top-k log-probabilities, for samples
of jobs that ask for soft labels (a measure of the teacher's uncertainty, to browse, filter and order
an export by). Null for other samples and for those from before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entropy", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_column("entropy")

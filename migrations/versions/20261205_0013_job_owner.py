"""job owner

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:00:00

The name of the API token that created a job: only it (or an admin token) may fill, start, cancel or
resume the job, and per-token caps count the jobs it has in flight. Jobs from before are owned by no
one, so only an admin token acts on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("owner")

"""workers

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 13:40:00

``workers``: each worker process's heartbeat, so that an operator sees which hosts' workers are live:
its host name, process id, visible GPUs, the teacher servers it talks to, the tasks it holds, how
often it beats and when it last did (and when it stopped, for a clean stop).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("teachers", sa.JSON(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("beat_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")

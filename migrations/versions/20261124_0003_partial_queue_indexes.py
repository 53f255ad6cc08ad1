"""partial queue indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 14:10:25.822808
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_status_lease_expires_at"))
        batch_op.drop_index(batch_op.f("ix_tasks_status_not_before"))
        batch_op.create_index(
            "ix_tasks_queued",
            ["not_before", "id"],
            unique=False,
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.create_index(
            "ix_tasks_running_lease",
            ["lease_expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasks_running_lease",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_index(
            "ix_tasks_queued",
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_status_not_before"), ["status", "not_before"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tasks_status_lease_expires_at"), ["status", "lease_expires_at"], unique=False
        )

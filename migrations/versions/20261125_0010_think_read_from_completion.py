"""think read from the completion

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 10:00:00

A sample's think part is no longer stored beside its completion: it is the completion's text up to
the first ``</think>`` (``workers/reasoning.split_text``), and the worker now splits every reply by
that rule, ``reasoning`` fields included, so reading it again from the completion gives what was
verified. Reasoning traces are most of a sample's bytes; the column held each of them a second time
(in the throughput bench's realistic regime, 7 kB a sample written, compressed and logged twice).

Downgrade brings the column back (lz4-compressed where 0008 made it so), filled from the completions
by the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_ROWS = 1_000


def _think(completion: str) -> str | None:
    """The rule of ``workers/reasoning.split_text`` as of this revision (a migration keeps its own)."""
    if "</think>" in completion:
        return completion.partition("</think>")[0].split("<think>", 1)[-1].strip()
    stripped = completion.lstrip()
    return stripped[len("<think>") :].strip() if stripped.startswith("<think>") else None


def upgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("think")


def downgrade() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("think", sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        lz4 = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        if bind.exec_driver_sql(lz4).scalar():
            op.execute("ALTER TABLE samples ALTER COLUMN think SET COMPRESSION lz4")
    samples = sa.table("samples", sa.column("id", sa.Integer), sa.column("completion"), sa.column("think"))
    last = 0
    while rows := bind.execute(
        sa.select(samples.c.id, samples.c.completion)
        .where(samples.c.id > last)
        .order_by(samples.c.id)
        .limit(BATCH_ROWS)
    ).all():
        bind.execute(
            samples.update()
            .where(samples.c.id == sa.bindparam("sample_id"))
            .values(think=sa.bindparam("text")),
            [{"sample_id": i, "text": _think(completion)} for i, completion in rows],
        )
        last = rows[-1][0]

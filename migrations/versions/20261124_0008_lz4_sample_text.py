"""lz4 for sample text on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 22:40:00

PostgreSQL compresses long text (TOAST) with pglz unless told otherwise; every committed sample's
completion goes through it once and through decompression again when the flusher reads it. lz4 does
both for less CPU (bench/throughput.py, realistic regime: the database's CPU per sample was 0.45 to
0.54 ms in four runs before, 0.36 to 0.45 ms in three after; offline, committing 4,000 samples cost
PostgreSQL 0.14 ms each against 0.2). Only where the server was built with lz4, as Debian's and the official images are;
SQLite has no such setting. Values already stored keep their compression.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = ("completion", "think", "answer")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    query = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    return bool(bind.exec_driver_sql(query).scalar())


def _compress(method: str) -> None:
    if _lz4_available():
        for column in TEXT_COLUMNS:
            op.execute(f"ALTER TABLE samples ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _compress("lz4")


def downgrade() -> None:
    _compress("default")

"""The schema comes from Alembic alone, matches the models, and goes away again on downgrade."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect

from service.db import alembic_config, downgrade_schema, upgrade_schema
from service.models import metadata

TABLES = {"jobs", "tasks", "samples", "verdicts", "shards", "exports"}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_check_downgrade(db_url: str) -> None:
    # db_url arrives migrated to head (on SQLite and on PostgreSQL).
    assert _tables(db_url) == TABLES == set(metadata.tables)
    from alembic import command

    command.check(alembic_config(db_url))  # raises if the models differ from the migrations
    downgrade_schema(db_url)
    assert _tables(db_url) == set()
    upgrade_schema(db_url)
    assert _tables(db_url) == TABLES


def test_alembic_command_line_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    """`alembic upgrade head` / `alembic downgrade base` as a user would type them."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    env = {"TRACEMILL_DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    root = Path(__file__).resolve().parent.parent
    for args, expected in ((["upgrade", "head"], TABLES), (["downgrade", "base"], set())):
        subprocess.run(
            [sys.executable, "-m", "alembic", *args], cwd=root, env=env, check=True, capture_output=True
        )
        assert _tables(url) == expected

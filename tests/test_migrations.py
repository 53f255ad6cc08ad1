"""The schema comes from Alembic alone, matches the models, and goes away again on downgrade."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Inspector, MetaData, Table, create_engine, func, inspect, select

from service.database.db import alembic_config, downgrade_schema, make_engine, upgrade_schema
from service.database.models import metadata

TABLES = {
    "jobs",
    "tasks",
    "samples",
    "verdicts",
    "verdict_counts",
    "shards",
    "shard_backlog",
    "exports",
    "verifier_costs",
    "workers",
}


@contextmanager
def _inspector(url: str) -> Iterator[Inspector]:
    engine = create_engine(url)
    try:
        yield inspect(engine)
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    with _inspector(url) as schema:
        return set(schema.get_table_names()) - {"alembic_version"}


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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url"))


NOW = datetime(2026, 11, 24, 12, 0, 0)


@contextmanager
def _schema_now(url: str) -> Iterator[tuple[Connection, dict[str, Table]]]:
    """A transaction on the database and its tables as its current revision has them."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            meta = MetaData()
            meta.reflect(conn)
            yield conn, dict(meta.tables)
    finally:
        engine.dispose()


def _add_task(conn: Connection, t: dict[str, Table]) -> None:
    """Job ``j`` and its task 1, for a test to add three samples to."""
    conn.execute(t["jobs"].insert().values(id="j", status="running", spec={}, num_tasks=1, created_at=NOW))
    conn.execute(
        t["tasks"].insert().values(
            id=1, job_id="j", prompt_id="p", prompt="q", status="done", attempt=1, not_before=NOW,
            n_samples=3, n_accepted=2, prompt_tokens=1, completion_tokens=3,
        )
    )  # fmt: skip


def _add_sample(
    conn: Connection, t: dict[str, Table], sample_id: int, accepted: bool, **columns: Any
) -> None:
    """A sample of task 1 with the given columns, and a format verdict of it."""
    common = {"task_id": 1, "job_id": "j", "sample_index": sample_id, "attempt": 1, "completion_tokens": 1}
    conn.execute(
        t["samples"].insert().values(id=sample_id, accepted=accepted, created_at=NOW, **common, **columns)
    )
    conn.execute(
        t["verdicts"]
        .insert()
        .values(sample_id=sample_id, verifier="format", job_id="j", accepted=accepted, details={})
    )


def test_0009_moves_samples_awaiting_a_shard_to_the_backlog_and_keeps_every_verdict(empty_url: str) -> None:
    """On SQLite the samples table is rebuilt: with foreign keys on, dropping the old one would have
    deleted every verdict (``migrations/env.py`` turns them off for migrations)."""
    upgrade_schema(empty_url, "0008")
    with _schema_now(empty_url) as (conn, t):
        _add_task(conn, t)
        conn.execute(
            t["shards"]
            .insert()
            .values(
                id=7, job_id="j", kind="accepted", path="a.parquet", num_rows=1, num_bytes=1, created_at=NOW
            )
        )
        for sample_id, accepted, shard_id in ((1, True, 7), (2, True, None), (3, False, None)):
            _add_sample(conn, t, sample_id, accepted, completion="c", shard_id=shard_id)

    upgrade_schema(empty_url)
    with _schema_now(empty_url) as (conn, new):
        backlog = new["shard_backlog"]
        rows = conn.execute(
            select(backlog.c.sample_id, backlog.c.accepted).order_by(backlog.c.sample_id)
        ).all()
        assert [tuple(row) for row in rows] == [(2, True), (3, False)]
        assert conn.execute(select(func.count()).select_from(new["verdicts"])).scalar_one() == 3
        assert "shard_id" not in new["samples"].c

    downgrade_schema(empty_url, "0008")
    with _schema_now(empty_url) as (conn, old):
        samples = old["samples"]
        shard_ids = conn.execute(select(samples.c.id, samples.c.shard_id).order_by(samples.c.id)).all()
        assert [tuple(row) for row in shard_ids] == [(1, 7), (2, None), (3, None)]
        assert conn.execute(select(func.count()).select_from(old["verdicts"])).scalar_one() == 3


def test_0010_reads_think_from_the_completion_and_a_downgrade_fills_it_again(empty_url: str) -> None:
    upgrade_schema(empty_url, "0009")
    completions = {1: "<think>\nsteps\n</think>\n\n4", 2: "no think here", 3: "<think>cut off"}
    with _schema_now(empty_url) as (conn, t):
        _add_task(conn, t)
        for sample_id, completion in completions.items():
            _add_sample(conn, t, sample_id, True, completion=completion, think="stored")

    upgrade_schema(empty_url)
    with _schema_now(empty_url) as (conn, new):
        assert "think" not in new["samples"].c
        assert conn.execute(select(func.count()).select_from(new["verdicts"])).scalar_one() == 3

    downgrade_schema(empty_url, "0009")
    with _schema_now(empty_url) as (conn, old):
        samples = old["samples"]
        rows = conn.execute(select(samples.c.id, samples.c.think).order_by(samples.c.id)).all()
        assert [tuple(row) for row in rows] == [(1, "steps"), (2, None), (3, "cut off")]


def _referenced(url: str, table: str) -> set[str]:
    with _inspector(url) as schema:
        return {key["referred_table"] for key in schema.get_foreign_keys(table)}


def test_0011_drops_the_job_keys_of_sample_rows_and_deletes_still_cascade(empty_url: str) -> None:
    upgrade_schema(empty_url, "0010")
    with _schema_now(empty_url) as (conn, t):
        _add_task(conn, t)
        for sample_id in (1, 2, 3):
            _add_sample(conn, t, sample_id, sample_id != 3, completion="c")
            conn.execute(
                t["shard_backlog"]
                .insert()
                .values(job_id="j", accepted=True, sample_id=sample_id, created_at=NOW)
            )

    upgrade_schema(empty_url, "0011")
    assert _referenced(empty_url, "samples") == {"tasks"}
    assert _referenced(empty_url, "verdicts") == {"samples"}
    assert _referenced(empty_url, "shard_backlog") == {"samples"}
    with _schema_now(empty_url) as (conn, new):
        for table in ("samples", "verdicts", "shard_backlog"):
            assert conn.execute(select(func.count()).select_from(new[table])).scalar_one() == 3
        conn.execute(new["tasks"].delete())  # a task's removal takes its samples and what hangs on them
        for table in ("samples", "verdicts", "shard_backlog"):
            assert conn.execute(select(func.count()).select_from(new[table])).scalar_one() == 0

    downgrade_schema(empty_url, "0010")
    assert _referenced(empty_url, "samples") == {"tasks", "jobs"}
    assert _referenced(empty_url, "verdicts") == {"samples", "jobs"}
    assert _referenced(empty_url, "shard_backlog") == {"jobs"}


def _indexes(url: str, table: str) -> set[str]:
    with _inspector(url) as schema:
        return {str(index["name"]) for index in schema.get_indexes(table)}


def test_0012_counts_the_verdicts_there_and_a_downgrade_gives_verdicts_their_job(empty_url: str) -> None:
    upgrade_schema(empty_url, "0011")
    with _schema_now(empty_url) as (conn, t):
        _add_task(conn, t)
        for sample_id in (1, 2, 3):
            _add_sample(conn, t, sample_id, sample_id == 1, completion="c")  # format: 1 accepted, 2 not
        verdicts = t["verdicts"]
        conn.execute(verdicts.update().where(verdicts.c.sample_id > 1).values(reason="format:no_think"))
        conn.execute(
            t["verdicts"]
            .insert()
            .values(sample_id=3, verifier="math", job_id="j", accepted=False, reason="math:wrong", details={})
        )
    with_indexes = _indexes(empty_url, "verdicts")
    assert {"ix_verdicts_job_id_reason", "ix_verdicts_job_id_verifier_accepted"} <= with_indexes

    upgrade_schema(empty_url)
    with _schema_now(empty_url) as (conn, new):
        counts = new["verdict_counts"]
        rows = conn.execute(select(counts).order_by(*counts.c)).all()
        assert [tuple(row) for row in rows] == [
            ("j", "format", False, "format:no_think", 2),
            ("j", "format", True, "", 1),
            ("j", "math", False, "math:wrong", 1),
        ]
        assert "job_id" not in new["verdicts"].c
        assert conn.execute(select(func.count()).select_from(new["verdicts"])).scalar_one() == 4
    assert not _indexes(empty_url, "verdicts") & with_indexes

    downgrade_schema(empty_url, "0011")
    with _schema_now(empty_url) as (conn, old):
        verdicts = old["verdicts"]
        assert set(conn.execute(select(verdicts.c.job_id)).scalars()) == {"j"}
        assert "verdict_counts" not in old
    assert _indexes(empty_url, "verdicts") == with_indexes

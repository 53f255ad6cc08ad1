"""Shards are all or nothing, recorded with their samples, and a crash's leftovers are removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, delete, func, select, update

from service.database import finishing, jobs, queue
from service.database.db import writing
from service.database.finishing import NewSample
from service.database.models import Job, Shard, ShardBacklog, Task
from service.errors import ShardWriteError
from service.schemas import JobIn
from service.storage import shard_rows, shards
from service.storage.stores import ShardStore
from verifiers.base import NamedVerdict


def _new_job(engine: Engine, prompts: int = 5, n: int = 1) -> str:
    """A queued job of ``prompts`` prompts ("Compute i + 1.", reference i + 1), ``n`` samples each."""
    return jobs.create_job(
        engine,
        JobIn.model_validate(
            {
                "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "teacher-x"},
                "n": n,
                "prompts": [
                    {"id": f"p{i}", "prompt": f"Compute {i} + 1.", "reference": str(i + 1)}
                    for i in range(prompts)
                ],
            }
        ),
    ).id


def _finished_job(engine: Engine, prompts: int = 4, n: int = 3) -> str:
    job_id = _new_job(engine, prompts, n)
    for task in queue.claim(engine, "w", prompts, 30, max_attempts=3):
        samples = [
            NewSample(
                i,
                f"<think>t</think> {i}",
                str(i),
                "stop",
                5,
                (NamedVerdict("format", i % 2 == 0, None if i % 2 == 0 else "format:empty_think", {"k": i}),),
            )
            for i in range(n)
        ]
        finishing.finish(engine, task, "w", samples, prompt_tokens=4)
    return job_id


def test_flush_writes_recorded_shards_holding_every_sample_once(engine: Engine, tmp_path: Path) -> None:
    job_id = _finished_job(engine)
    result = shards.flush_all(engine, ShardStore(tmp_path), shard_rows=5)
    assert result.rows == 12
    listed = jobs.list_shards(engine, job_id, ShardStore(tmp_path))
    assert sorted((s.kind, s.num_rows) for s in listed) == [("accepted", 3), ("accepted", 5), ("rejected", 4)]
    tables = [pq.read_table(tmp_path / s.path) for s in listed]
    assert [t.num_rows for t in tables] == [s.num_rows for s in listed]
    ids = [i for t in tables for i in t.column("sample_id").to_pylist()]
    assert len(ids) == len(set(ids)) == 12
    row = tables[0].to_pylist()[0]
    assert row["teacher_model"] == "teacher-x" and row["messages"][0]["role"] == "user"
    assert row["verdicts"][0]["verifier"] == "format"
    with engine.connect() as conn:
        assert conn.execute(select(Job.status).where(Job.id == job_id)).scalar_one() == "done"
        assert conn.execute(select(func.count()).select_from(ShardBacklog)).scalar_one() == 0
    assert shards.flush_all(engine, ShardStore(tmp_path), shard_rows=5).rows == 0  # nothing is written twice


def test_each_row_carries_its_own_verdicts_and_reasons(engine: Engine, tmp_path: Path) -> None:
    """Verdict and reason lists are cut from flat columns: each row must get exactly its own."""
    job_id = _new_job(engine, prompts=1, n=4)
    ok = NamedVerdict("format", True, None, {"chars": 3})
    verdicts: list[tuple[NamedVerdict, ...]] = [
        (ok, NamedVerdict("math", False, "math:wrong", {"got": "3"})),
        (),
        (NamedVerdict("format", False, "format:no_think", {}), NamedVerdict("math", False, "math:wrong", {})),
        (ok, NamedVerdict("math", True, None, {"got": "2"})),
    ]
    (claimed,) = queue.claim(engine, "w", 1, 30, max_attempts=3)
    samples = [NewSample(i, f"<think>t</think> {i}", None, "stop", 5, v) for i, v in enumerate(verdicts)]
    finishing.finish(engine, claimed, "w", samples, prompt_tokens=4)
    shards.flush_job(engine, ShardStore(tmp_path), job_id, shard_rows=100, final=True)
    rows = [
        row
        for shard in jobs.list_shards(engine, job_id, ShardStore(tmp_path))
        for row in pq.read_table(tmp_path / shard.path).to_pylist()
    ]
    got = {row["sample_index"]: (row["verdicts"], row["reasons"]) for row in rows}
    assert got == {
        i: (
            [
                {"verifier": v.verifier, "accepted": v.accepted, "reason": v.reason}
                | {"details": json.dumps(v.details)}
                for v in expected
            ],
            [v.reason for v in expected if v.reason],
        )
        for i, expected in enumerate(verdicts)
    }


def test_a_shard_is_read_and_written_a_row_group_at_a_time(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of the backlog become the shard's row groups, in id order, each row once with its own
    verdicts: what a flush holds in memory is one page, whatever the shard's size."""
    monkeypatch.setattr(shard_rows, "ROW_GROUP_ROWS", 2)
    job_id = _finished_job(engine)  # 8 accepted samples, 4 rejected
    assert shards.flush_job(engine, ShardStore(tmp_path), job_id, shard_rows=5, final=True).rows == 12
    listed = sorted(
        jobs.list_shards(engine, job_id, ShardStore(tmp_path)), key=lambda s: (s.kind, -s.num_rows)
    )
    assert [(s.kind, s.num_rows) for s in listed] == [
        ("accepted", 5),
        ("accepted", 3),
        ("rejected", 4),
    ]
    full = pq.ParquetFile(tmp_path / listed[0].path)
    assert [full.metadata.row_group(i).num_rows for i in range(full.num_row_groups)] == [2, 2, 1]
    rows = full.read().to_pylist()
    assert [r["sample_id"] for r in rows] == sorted(r["sample_id"] for r in rows)
    assert all(r["accepted"] and [v["accepted"] for v in r["verdicts"]] == [True] for r in rows)
    assert listed[0].path.rpartition("/")[2].startswith(f"part-{rows[0]['sample_id']:012d}-")


def test_partial_shards_wait_until_the_job_is_final(engine: Engine, tmp_path: Path) -> None:
    job_id = _finished_job(engine)
    assert shards.flush_job(engine, ShardStore(tmp_path), job_id, shard_rows=100, final=False).rows == 0
    assert shards.flush_job(engine, ShardStore(tmp_path), job_id, shard_rows=100, final=True).rows == 12


def test_a_racing_flusher_loses_cleanly(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another flusher commits the same samples first: ours rolls back and removes its file."""
    job_id = _finished_job(engine)
    real_columns = shard_rows._columns

    def columns_then_race(*args, **kwargs):  # type: ignore[no-untyped-def]
        columns = real_columns(*args, **kwargs)
        if columns["sample_id"]:
            with writing(engine) as conn:
                conn.execute(
                    Shard.__table__.insert().values(
                        job_id=job_id,
                        kind="accepted",
                        path="other.parquet",
                        num_rows=1,
                        num_bytes=1,
                        created_at=columns["created_at"][0],
                    )
                )
                conn.execute(delete(ShardBacklog).where(ShardBacklog.sample_id == columns["sample_id"][0]))
        return columns

    monkeypatch.setattr(shard_rows, "_columns", columns_then_race)
    with pytest.raises(ShardWriteError, match="already in another shard"):
        shards.flush_job(engine, ShardStore(tmp_path), job_id, shard_rows=100, final=True)
    assert not list(tmp_path.rglob("*.parquet"))


def test_orphans_and_temporary_files_are_removed(engine: Engine, tmp_path: Path) -> None:
    job_id = _finished_job(engine)
    shards.flush_all(engine, ShardStore(tmp_path), shard_rows=100)
    recorded = {tmp_path / s.path for s in jobs.list_shards(engine, job_id, ShardStore(tmp_path))}
    orphan = tmp_path / job_id / "accepted" / "part-999.parquet"
    temporary = tmp_path / job_id / "accepted" / ".part-1000.parquet.abcd.tmp"
    orphan.write_bytes(b"half a shard")
    temporary.write_bytes(b"half a shard")
    assert (
        shards.remove_orphans(engine, ShardStore(tmp_path), grace_s=60) == []
    )  # too fresh: maybe in flight elsewhere
    old = os.stat(orphan).st_mtime - 120
    os.utime(orphan, (old, old))
    os.utime(temporary, (old, old))
    removed = shards.remove_orphans(engine, ShardStore(tmp_path), grace_s=60)
    assert {tmp_path / relative for relative in removed} == {orphan, temporary}
    assert set(tmp_path.rglob("*.parquet")) == recorded


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    import pyarrow as pa

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    with pytest.raises(ShardWriteError):
        ShardStore(tmp_path).write("blocked/part.parquet", pa.table({"x": [1]}))
    assert [p.name for p in tmp_path.iterdir()] == ["blocked"]


def test_a_draining_job_is_written_out_before_its_last_task_ends(engine: Engine, tmp_path: Path) -> None:
    job_id = _new_job(engine, prompts=5, n=3)
    tasks = queue.claim(engine, "w", 4, 30, max_attempts=3)  # one prompt still queued
    for task in tasks[:3]:
        samples = [
            NewSample(i, "<think>t</think> 1", "1", "stop", 5, (NamedVerdict("format", i != 1, None, {}),))
            for i in range(3)
        ]
        finishing.finish(engine, task, "w", samples, prompt_tokens=4)
    nothing = shards.FlushResult(0, 0, finishing=True)  # as many tasks running as waiting
    assert (
        shards.flush_all(engine, ShardStore(tmp_path), shard_rows=20, max_age_s=3600) == nothing
    )  # work still queued
    queue.claim(engine, "w", 1, 30, max_attempts=3)  # every unfinished task running: draining
    written = shards.flush_all(engine, ShardStore(tmp_path), shard_rows=20)
    assert written == shards.FlushResult(2, 9, finishing=True)
    assert shards.flush_all(engine, ShardStore(tmp_path), shard_rows=20) == nothing
    with engine.connect() as conn:
        assert conn.execute(select(Job.status).where(Job.id == job_id)).scalar_one() == "running"


def test_a_job_near_its_end_asks_for_frequent_passes(engine: Engine, tmp_path: Path) -> None:
    """``finishing`` (no more tasks waiting than running) makes the API's flusher look every
    0.2 s, so that the job is done a moment after its last reply whatever the flush interval."""
    _new_job(engine, prompts=5)
    flushed = []
    for claimed in (1, 2, 2):  # running 1 of 5, then 3 of 5, then all 5
        queue.claim(engine, "w", claimed, 30, max_attempts=3)
        flushed.append(shards.flush_all(engine, ShardStore(tmp_path), shard_rows=20).finishing)
    assert flushed == [False, True, True]


def test_samples_that_waited_long_enough_are_written_early(engine: Engine, tmp_path: Path) -> None:
    job_id = _finished_job(engine, prompts=4, n=3)
    with writing(engine) as conn:  # as if one prompt were still to be sampled
        conn.execute(update(Job).where(Job.id == job_id).values(status="running"))
        conn.execute(update(Task).where(Task.prompt_id == "p3").values(status="queued"))
    nothing = shards.FlushResult(0, 0)
    assert shards.flush_all(engine, ShardStore(tmp_path), shard_rows=40, max_age_s=3600) == nothing
    assert shards.flush_all(
        engine, ShardStore(tmp_path), shard_rows=40, max_age_s=1e-6
    ) == shards.FlushResult(2, 12)
    with engine.connect() as conn:
        assert conn.execute(select(Job.status).where(Job.id == job_id)).scalar_one() == "running"

"""What the chaos benches count after a run: lost, doubled and corrupt samples, read back from the
database and from the shard store (a local folder or an object store), and the job they run."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import func, select

from service.database.models import Job, Sample, Shard, Task
from service.standin.server import DEFAULT_MODEL
from service.storage.stores import ShardStore

JOB_TIMEOUT_S = 300

Accepted = set[tuple[str, int, str]]


@dataclass
class Outcome:
    kills: int = 0
    lost: int = 0
    doubled: int = 0
    corrupt: int = 0
    mismatched: int = 0
    seconds: float = 0.0


def job_body(teacher: str, prompts: int, n: int, timeout_s: float = 2) -> dict[str, Any]:
    """A math job; the teacher's short request timeout turns the faulty teacher's hangs into retries."""
    return {
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL, "timeout_s": timeout_s},
        "n": n,
        "sampling": {"seed": 2024, "max_tokens": 2048},
        "verifiers": [{"name": "format"}, {"name": "math"}],
        "prompts": [
            {
                "id": f"c{i}",
                "prompt": f"Compute ({i} + 11) * {i % 7 + 2}.",
                "reference": str((i + 11) * (i % 7 + 2)),
            }
            for i in range(prompts)
        ],
    }


def wait_done(engine: Any, job_id: str, deadline: float, on_tick: Any = None) -> None:
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            status = conn.execute(select(Job.status).where(Job.id == job_id)).scalar_one()
        if status == "done":
            return
        if on_tick is not None:
            on_tick()
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")


def check_job(engine: Any, store: ShardStore, job_id: str, prompts: int, n: int) -> tuple[Accepted, Outcome]:
    """Every prompt must have exactly ``n`` committed samples, and the shards exactly those samples."""
    with engine.connect() as conn:
        per_task = conn.execute(
            select(Task.prompt_id, func.count(Sample.id))
            .outerjoin(Sample, Sample.task_id == Task.id)
            .where(Task.job_id == job_id)
            .group_by(Task.prompt_id)
        ).all()
    accepted, outcome = accepted_samples(engine, store, job_id)
    outcome.lost += sum(max(0, n - count) for _, count in per_task) + (prompts - len(per_task))
    outcome.doubled += sum(max(0, count - n) for _, count in per_task)
    return accepted, outcome


def accepted_samples(engine: Any, store: ShardStore, job_id: str) -> tuple[Accepted, Outcome]:
    """What the shards hold, checked against the database: a shard that does not read back with its
    recorded rows, or a file no shard row records, is corrupt."""
    outcome = Outcome()
    with engine.connect() as conn:
        shards = conn.execute(select(Shard.path, Shard.num_rows).where(Shard.job_id == job_id)).all()
        committed = set(conn.execute(select(Sample.id).where(Sample.job_id == job_id)).scalars())
    seen: Counter[int] = Counter()
    accepted = set()
    for path, rows in shards:
        try:
            with store.open(path) as source:
                table = pq.read_table(source)
        except Exception:  # an unreadable shard is exactly what this script counts
            outcome.corrupt += 1
            continue
        if table.num_rows != rows:
            outcome.corrupt += 1
        for row in table.select(
            ["sample_id", "prompt_id", "sample_index", "completion", "accepted"]
        ).to_pylist():
            seen[row["sample_id"]] += 1
            if row["accepted"]:
                accepted.add((row["prompt_id"], row["sample_index"], row["completion"]))
    recorded = {p for p, _ in shards}
    outcome.corrupt += sum(1 for path, _ in store.files() if path not in recorded)
    outcome.doubled += sum(count - 1 for count in seen.values())
    outcome.lost += len(committed - set(seen))
    return accepted, outcome

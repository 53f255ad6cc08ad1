"""The rows of an export: accepted samples read back from their shards as SFT rows (the prompt's turns
and the assistant's, with where they came from), and the general rows beside them.

Shards are decoded a row group at a time and rows handed on in batches of ``BATCH_ROWS``, so that
memory stays flat however large the jobs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from service.database.db import reading
from service.database.models import Job, Shard, Task
from service.export.inputs import general_row
from service.export.options import ExportOptions
from service.sources import read_rows
from service.storage.stores import ShardStore

MAJORITY = "majority"  # the vote's verifier (verifiers/majority.py, not imported: it loads sympy)
BATCH_ROWS = 1_024  # rows decoded into Python at once while streaming: small keeps the peak low
Row = dict[str, Any]
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SCHEMA = pa.schema(
    [
        ("messages", pa.list_(MESSAGE)),
        ("source", pa.string()),
        ("job_id", pa.string()),
        ("prompt_id", pa.string()),
        ("teacher", pa.string()),
        ("verifiers", pa.list_(pa.string())),
        ("num_tokens", pa.int32()),
        ("pass_rate", pa.float32()),
        ("student_pass_rate", pa.float32()),
        ("entropy", pa.float32()),
        ("reference", pa.string()),
        ("reference_from", pa.string()),
    ]
)


def assistant_turn(think: str | None, answer: str | None, template: str) -> str:
    """The teacher's turn as the student should learn to write it."""
    think, answer = (think or "").strip(), (answer or "").strip()
    if template == "answer_tag":
        return f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"
    return f"<think>\n{think}\n</think>\n\n{answer}"


def shard_paths(engine: Engine, job_id: str) -> list[str]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(Shard.path).where(Shard.job_id == job_id, Shard.kind == "accepted").order_by(Shard.id)
            ).scalars()
        )


def _pass_rates(engine: Engine, job_id: str, prompt_ids: list[str]) -> dict[str, float]:
    """Accepted / sampled of these prompts (looked up a batch at a time, to keep memory flat)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(Task.prompt_id, Task.n_accepted, Task.n_samples).where(
                Task.job_id == job_id, Task.prompt_id.in_(prompt_ids), Task.n_samples > 0
            )
        ).all()
    return {prompt_id: accepted / sampled for prompt_id, accepted, sampled in rows}


def student_probe(engine: Engine, job_id: str) -> str | None:
    """The student probe job whose prompts this job took (``prompts_from`` a job of role student)."""
    with reading(engine) as conn:
        spec = conn.execute(select(Job.spec).where(Job.id == job_id)).scalar_one()
    source = spec.get("prompts_from") or {}
    return str(source["job"]) if source.get("of") == "student" else None


def _tasks(engine: Engine, job_id: str, prompt_ids: list[str]) -> dict[str, str]:
    """The task each prompt's decontamination is counted under (read only when decontaminating: the
    metadata may hold a whole reasoning-gym entry)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(Task.prompt_id, Task.prompt_metadata).where(
                Task.job_id == job_id, Task.prompt_id.in_(prompt_ids)
            )
        ).all()
    return {prompt_id: task_of(job_id, metadata) for prompt_id, metadata in rows}


def task_of(job_id: str, metadata: dict[str, Any] | None) -> str:
    """What a prompt's decontamination is counted under: its reasoning-gym task, else its metadata's
    ``source`` (the presets keep the dataset's), else its job."""
    metadata = metadata or {}
    entry = metadata.get("reasoning_gym")
    if isinstance(entry, dict) and isinstance(entry.get("metadata"), dict):
        task = entry["metadata"].get("source_dataset")
        if isinstance(task, str):
            return task
    source = metadata.get("source")
    return source if isinstance(source, str) and source else f"job {job_id}"


def reasoning_batches(
    engine: Engine, store: ShardStore, options: ExportOptions, chosen: pa.Array | None
) -> Iterator[list[Row]]:
    columns = [
        "sample_id",
        "job_id",
        "prompt_id",
        "messages",
        "think",
        "answer",
        "completion_tokens",
        "verdicts",
        "teacher_model",
        "reference",
        "entropy",  # not in shards written before it was kept
    ]
    for job_id in options.jobs:
        probe = student_probe(engine, job_id)
        for path in shard_paths(engine, job_id):
            with store.open(path) as source:  # decoded a row group at a time, never the whole shard
                shard = pq.ParquetFile(source)
                present = [c for c in columns if c in shard.schema_arrow.names]
                for batch in shard.iter_batches(BATCH_ROWS, columns=present):
                    kept = (
                        batch
                        if chosen is None
                        else batch.filter(pc.is_in(batch.column("sample_id"), value_set=chosen))
                    )
                    if kept.num_rows:
                        yield _reasoning_rows(engine, job_id, kept.to_pylist(), options, probe)


def _reasoning_rows(
    engine: Engine, job_id: str, rows: list[dict[str, Any]], options: ExportOptions, probe: str | None
) -> list[Row]:
    """Shard rows as SFT rows: the prompt's turns plus the assistant's, where they came from, and how
    hard the prompt was for the teacher (and for the student, when a probe job measured it)."""
    prompt_ids = sorted({r["prompt_id"] for r in rows})
    rates = _pass_rates(engine, job_id, prompt_ids)
    student = _pass_rates(engine, probe, prompt_ids) if probe is not None else {}
    tasks = _tasks(engine, job_id, prompt_ids) if options.decontaminate else {}
    return [
        {
            "messages": [
                *row["messages"],
                {
                    "role": "assistant",
                    "content": assistant_turn(row["think"], row["answer"], options.template),
                },
            ],
            "source": "reasoning",
            "sample_id": row["sample_id"],  # not a dataset column: ties the row to its soft labels
            "job_id": row["job_id"],
            "prompt_id": row["prompt_id"],
            "teacher": row["teacher_model"],
            "verifiers": [v["verifier"] for v in row["verdicts"]],
            "num_tokens": row["completion_tokens"],
            "pass_rate": rates.get(row["prompt_id"]),
            "student_pass_rate": student.get(row["prompt_id"]),
            "entropy": row.get("entropy"),
            "task": tasks.get(row["prompt_id"], f"job {job_id}"),  # not a dataset column
            **reference_of(row),
        }
        for row in rows
    ]


def reference_of(row: dict[str, Any]) -> dict[str, str | None]:
    """The prompt's reference or, for a prompt without one, the answer its samples' majority vote
    agreed on: a pseudo-reference (``reference_from``: ``prompt`` or ``majority``)."""
    if row.get("reference") is not None:
        return {"reference": row["reference"], "reference_from": "prompt"}
    for verdict in row["verdicts"]:
        if verdict["verifier"] == MAJORITY and verdict["accepted"] and verdict["details"]:
            answer = json.loads(verdict["details"]).get("answer")
            if isinstance(answer, str):
                return {"reference": answer, "reference_from": "majority"}
    return {"reference": None, "reference_from": None}


def general_batches(options: ExportOptions) -> Iterator[list[Row]]:
    """The usable general rows, a batch at a time, in the same order on every read."""
    numbered = enumerate(row for path in options.general for row in read_rows(path))
    formatted = (general_row(row, number) for number, row in numbered)
    yield from _batched((row for row in formatted if row is not None), BATCH_ROWS)


def _batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch

"""Samples with their prompt and verdicts: the one read path of the sample API and the shard writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, select

from service.models import Sample, Task, Verdict

ID_CHUNK = 500  # keeps IN lists well under SQLite's bound-parameter limit


# sample, prompt id, prompt text, prompt messages, reference
SampleQuery = Select[Sample, str, str | None, list[dict[str, str]] | None, str | None]


def with_prompt() -> SampleQuery:
    """Sample rows joined with their task's prompt id, prompt (text or messages) and reference, by id."""
    return (
        select(Sample, Task.prompt_id, Task.prompt, Task.messages, Task.reference)
        .join(Task, Task.id == Sample.task_id)
        .order_by(Sample.id)
    )


def verdicts_by_sample(conn: Connection, ids: Sequence[int]) -> dict[int, list[Any]]:
    """Every verdict row of the given samples, grouped by sample id (each id present)."""
    verdicts: dict[int, list[Any]] = {i: [] for i in ids}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        for row in conn.execute(
            select(Verdict).where(Verdict.sample_id.in_(chunk)).order_by(Verdict.sample_id, Verdict.verifier)
        ):
            verdicts[row.sample_id].append(row)
    return verdicts

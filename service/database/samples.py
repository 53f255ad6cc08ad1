"""Samples with their prompt and verdicts: the one read path of the sample API and the shard writer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select

from service.database.db import among
from service.database.models import Sample, Task, Verdict

# sample, prompt id, prompt text, prompt messages, reference
SampleQuery = Select[Sample, str, str | None, list[dict[str, str]] | None, str | None]


def with_prompt() -> SampleQuery:
    """Sample rows joined with their task's prompt id, prompt (text or messages) and reference, by id."""
    return (
        select(Sample, Task.prompt_id, Task.prompt, Task.messages, Task.reference)
        .join(Task, Task.id == Sample.task_id)
        .order_by(Sample.id)
    )


def verdict_rows(
    conn: Connection, ids: Sequence[int], details: ColumnElement[Any] | None = None
) -> list[Any]:
    """Every verdict of the given samples (sample id, verifier, accepted, reason, details) in sample id
    order, then by verifier. ``details`` may be another expression of that column: the shard writer
    reads it as the JSON text stored, rather than decoding it only to encode it again."""
    columns = (Verdict.sample_id, Verdict.verifier, Verdict.accepted, Verdict.reason)
    return list(
        conn.execute(
            select(*columns, (Verdict.details if details is None else details).label("details"))
            .where(among(conn, Verdict.sample_id, ids))
            .order_by(Verdict.sample_id, Verdict.verifier)
        ).all()
    )


def verdicts_by_sample(conn: Connection, ids: Sequence[int]) -> dict[int, list[Any]]:
    """Every verdict of the given samples, grouped by sample id (each id present)."""
    verdicts: dict[int, list[Any]] = {i: [] for i in ids}
    for row in verdict_rows(conn, ids):
        verdicts[row.sample_id].append(row)
    return verdicts

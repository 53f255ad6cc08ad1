"""A shard's rows: samples awaiting a shard, read from the database into Arrow a row group at a time.

The shard's columns are built column by column from plain rows (the sample, its task's prompt, its
verdicts, the job's spec), since ORM objects and a dict per row cost more than the rest of a flush.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, Text, cast, select

from service.database.db import among, reading
from service.database.models import Sample, ShardBacklog, Task, Verdict
from service.database.prompts import conversation
from service.database.samples import verdict_rows
from service.reasoning import split_text
from service.storage.soft_labels import SoftLabels, unpack
from service.storage.stores import ROW_GROUP_ROWS

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])


_VERDICT = pa.struct(
    [("verifier", pa.string()), ("accepted", pa.bool_()), ("reason", pa.string()), ("details", pa.string())]
)


SCHEMA = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("job_id", pa.string()),
        ("task_id", pa.int64()),
        ("prompt_id", pa.string()),
        ("sample_index", pa.int32()),
        ("attempt", pa.int32()),
        ("messages", pa.list_(_MESSAGE)),
        ("reference", pa.string()),
        ("completion", pa.string()),
        ("think", pa.string()),
        ("answer", pa.string()),
        ("finish_reason", pa.string()),
        ("completion_tokens", pa.int32()),
        ("entropy", pa.float32()),
        ("accepted", pa.bool_()),
        ("reasons", pa.list_(pa.string())),
        ("verdicts", pa.list_(_VERDICT)),
        ("teacher_model", pa.string()),
        ("created_at", pa.timestamp("us")),
    ]
)


# The shard's columns read as they are from the samples and tasks tables; the others (think,
# messages, reasons, verdicts, teacher_model) are built from these, the verdicts and the job's spec.
_READ = {
    "sample_id": Sample.id,
    "job_id": Sample.job_id,
    "task_id": Sample.task_id,
    "prompt_id": Task.prompt_id,
    "sample_index": Sample.sample_index,
    "attempt": Sample.attempt,
    "reference": Task.reference,
    "completion": Sample.completion,
    "answer": Sample.answer,
    "finish_reason": Sample.finish_reason,
    "completion_tokens": Sample.completion_tokens,
    "entropy": Sample.entropy,
    "accepted": Sample.accepted,
    "created_at": Sample.created_at,
}


def backlog_pages(
    conn: Connection, spec: dict[str, Any], job_id: str, accepted: bool, limit: int
) -> Iterator[pa.RecordBatch]:
    """Up to ``limit`` samples of one kind from the backlog, in id order, a row group at a time: a
    shard is written as it is read, so a flush holds one row group's text, not the whole shard's
    (which with long traces ran to hundreds of megabytes, freshly allocated and zeroed each flush)."""
    after, left = -1, limit
    while left > 0:
        rows = conn.execute(
            select(*_READ.values(), Task.prompt, Task.messages)
            .select_from(ShardBacklog)
            .join(Sample, Sample.id == ShardBacklog.sample_id)
            .join(Task, Task.id == Sample.task_id)
            .where(
                ShardBacklog.job_id == job_id,
                ShardBacklog.accepted.is_(accepted),
                ShardBacklog.sample_id > after,
            )
            .order_by(ShardBacklog.sample_id)
            .limit(min(left, ROW_GROUP_ROWS))
        ).all()
        if not rows:
            return
        yield pa.RecordBatch.from_pydict(_columns(conn, spec, rows), schema=SCHEMA)
        after, left = rows[-1].id, left - len(rows)


def _columns(conn: Connection, spec: dict[str, Any], rows: Sequence[Any]) -> dict[str, Any]:
    """Samples' rows (``_READ``'s columns, then the task's prompt and messages), with their verdicts,
    as the shard's columns: built column by column from plain rows, since ORM objects and a dict per
    row (or per verdict) cost more than the rest of a flush. Verdict details stay the JSON text the
    database holds."""
    verdicts = verdict_rows(conn, [row.id for row in rows], details=cast(Verdict.details, Text))
    *read, prompts, chats = _transpose(rows, len(_READ) + 2)
    columns: dict[str, Any] = dict(zip(_READ, read, strict=True))
    columns["think"] = [split_text(completion).think for completion in columns["completion"]]
    columns["messages"] = [conversation(p, m, spec) for p, m in zip(prompts, chats, strict=True)]
    columns.update(_verdict_columns(columns["sample_id"], verdicts))
    columns["teacher_model"] = [spec["teacher"]["model"]] * len(rows)
    return columns


def _verdict_columns(ids: list[int], verdicts: Sequence[Any]) -> dict[str, pa.Array]:
    """The ``verdicts`` and ``reasons`` list columns of samples ``ids`` (ascending) from their verdict
    rows (in sample id order), as flat values cut at offsets."""
    sample_ids, verifiers, accepted, reasons, details = _transpose(verdicts, 5)
    reasons_of = [sample for sample, reason in zip(sample_ids, reasons, strict=True) if reason is not None]
    return {
        "verdicts": pa.ListArray.from_arrays(
            _offsets(ids, sample_ids),
            pa.StructArray.from_arrays(
                [
                    pa.array(verifiers, pa.string()),
                    pa.array(accepted, pa.bool_()),
                    pa.array(reasons, pa.string()),
                    pa.array(details, pa.string()),
                ],
                fields=list(_VERDICT),
            ),
        ),
        "reasons": pa.ListArray.from_arrays(
            _offsets(ids, reasons_of), pa.array([r for r in reasons if r is not None], pa.string())
        ),
    }


def _transpose(rows: Sequence[Any], width: int) -> list[list[Any]]:
    """Rows of ``width`` values as ``width`` columns (empty ones when there are no rows)."""
    return [list(column) for column in zip(*rows, strict=True)] or [[] for _ in range(width)]


def _offsets(ids: list[int], owners: list[int]) -> pa.Array:
    """Where each sample's values start in a flat list of values whose owners are in sample order."""
    return pa.array([bisect_left(owners, i) for i in ids] + [len(owners)], pa.int32())


def soft_labels_of(engine: Engine, ids: list[int]) -> list[tuple[int, SoftLabels]]:
    """The packed soft labels of those samples that have them (accepted samples of such jobs)."""
    with reading(engine) as conn:
        found = conn.execute(
            select(Sample.id, Sample.soft_labels)
            .where(among(conn, Sample.id, ids), Sample.soft_labels.is_not(None))
            .order_by(Sample.id)
        ).all()
    return [(sample_id, unpack(blob)) for sample_id, blob in found if blob is not None]

"""``export --soft-labels``: for each exported reasoning row, what a logit-distillation loop reads.

Per row, in ``soft_labels/part-NNNNN.parquet`` beside the SFT ``data/``: ``input_ids``, the prompt
as the student's tokenizer renders it (chat template, generation prompt) followed by the teacher's own
completion token ids; ``loss_mask``, 1 over the completion; and, for each completion token, the
teacher's ``top_k`` most likely ids and their log-probabilities (``teacher_top_ids``,
``teacher_top_logprobs``, row-major, ``num_completion_tokens x top_k``, padded with id -1 and -inf).
The labels at completion token i belong to the student's logits at position ``prompt_len + i - 1``.
Soft labels index the teacher's vocabulary, so a student tokenizer that differs is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine

from service.errors import InvalidJob
from service.responses import JobOut
from service.storage.shards import soft_label_shards
from service.storage.stores import ShardStore

ROWS_PER_FILE = 5_000
ROW_GROUP_ROWS = 64  # a row carries ~100 bytes per token: small groups keep readers light
SCHEMA = pa.schema(
    [
        ("sample_id", pa.int64()),
        ("job_id", pa.string()),
        ("prompt_id", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("loss_mask", pa.list_(pa.int8())),
        ("top_k", pa.int16()),
        ("teacher_top_ids", pa.list_(pa.int32())),
        ("teacher_top_logprobs", pa.list_(pa.float16())),
    ]
)


def student_tokenizer(name: str, job_views: list[JobOut]) -> Any:
    """The student's tokenizer, once every job's teacher tokenizer is known to be the same."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise InvalidJob(
            "soft labels need transformers to read the student tokenizer (pip install transformers, or the "
            "'trl' extra)",
            field="student_tokenizer",
        ) from exc
    for job in job_views:
        teacher = (job.spec.get("soft_labels") or {}).get("tokenizer")
        if teacher is None:
            raise InvalidJob(
                f"job {job.id} ran without soft_labels: it has none to export", field="soft_labels"
            )
        if teacher != name and not _same_vocabulary(AutoTokenizer, teacher, name):
            raise InvalidJob(
                f"the student tokenizer {name!r} differs from the teacher tokenizer {teacher!r} of job "
                f"{job.id}: soft labels index the teacher's vocabulary, so the student must share it",
                field="student_tokenizer",
            )
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise InvalidJob(
            f"cannot load the student tokenizer {name!r}: {exc}", field="student_tokenizer"
        ) from exc


def _same_vocabulary(auto: Any, first: str, second: str) -> bool:
    """Two names for one vocabulary (say a 72B and a 7B of one family): both load and agree."""
    try:
        return bool(auto.from_pretrained(first).get_vocab() == auto.from_pretrained(second).get_vocab())
    except (OSError, ValueError):
        return False


def write_soft_labels(
    engine: Engine,
    store: ShardStore,
    *,
    job_ids: tuple[str, ...],
    kept: np.ndarray,
    tokenizer: Any,
    folder: Path,
) -> int:
    """Write the rows of the kept sample ids (sorted int64); returns how many were written."""
    folder.mkdir(parents=True)
    writer: pq.ParquetWriter | None = None
    written = files = 0
    kept_ids = pa.array(kept, pa.int64())
    try:
        for job_id in job_ids:
            for text_path, labels_path in soft_label_shards(engine, job_id):
                prompts = _prompts(store, text_path)
                with store.open(labels_path) as source:
                    for stored in pq.ParquetFile(source).iter_batches(ROW_GROUP_ROWS):
                        batch = stored.filter(pc.is_in(stored.column("sample_id"), value_set=kept_ids))
                        if not batch.num_rows:
                            continue
                        if writer is None or written >= files * ROWS_PER_FILE:
                            if writer is not None:
                                writer.close()
                            writer = pq.ParquetWriter(folder / f"part-{files:05d}.parquet", SCHEMA)
                            files += 1
                        writer.write_table(
                            _rows(job_id, batch, prompts, tokenizer), row_group_size=ROW_GROUP_ROWS
                        )
                        written += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return written


def _rows(
    job_id: str,
    batch: pa.RecordBatch,
    prompts: dict[int, tuple[str, list[dict[str, str]]]],
    tokenizer: Any,
) -> pa.Table:
    """A batch of soft-label shard rows as export rows. The top-k columns (most of the bytes) pass
    through as Arrow arrays; only the token ids of each row are touched in Python."""
    input_ids, loss_mask, prompt_ids_of = [], [], []
    for sample_id, completion in zip(
        batch.column("sample_id").to_pylist(), batch.column("token_ids").to_pylist(), strict=True
    ):
        prompt_id, messages = prompts[sample_id]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer.encode(text, add_special_tokens=False)
        input_ids.append([*prompt_ids, *completion])
        loss_mask.append(np.r_[np.zeros(len(prompt_ids), np.int8), np.ones(len(completion), np.int8)])
        prompt_ids_of.append(prompt_id)
    return pa.table(
        {
            "sample_id": batch.column("sample_id"),
            "job_id": pa.array([job_id] * batch.num_rows, pa.string()),
            "prompt_id": pa.array(prompt_ids_of, pa.string()),
            "input_ids": pa.array(input_ids, pa.list_(pa.int32())),
            "loss_mask": pa.array(loss_mask, pa.list_(pa.int8())),
            "top_k": batch.column("top_k"),
            "teacher_top_ids": batch.column("top_ids"),
            "teacher_top_logprobs": batch.column("top_logprobs"),
        },
        schema=SCHEMA,
    )


def _prompts(store: ShardStore, text_path: str) -> dict[int, tuple[str, list[dict[str, str]]]]:
    """Each sample's prompt id and the turns the teacher was sent, from its text shard."""
    with store.open(text_path) as source:
        table = pq.read_table(source, columns=["sample_id", "prompt_id", "messages"])
    return {row["sample_id"]: (row["prompt_id"], row["messages"]) for row in table.to_pylist()}

"""Which rows an export keeps: the best samples of each prompt (pass one, on ids and token counts alone),
then decontamination and dedup of everything kept so far.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine

from service.database.db import reading
from service.database.jobs import job_row
from service.errors import InvalidJob
from service.export.decontaminate import (
    Decontaminator,
)
from service.export.keyset import KeySet
from service.export.options import ExportOptions, ExportReport
from service.export.rows import Row, general_batches, reasoning_batches, shard_paths
from service.storage.stores import ShardStore


def _key(*texts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _user_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


def choose_samples(
    engine: Engine,
    store: ShardStore,
    options: ExportOptions,
    samples_per_prompt: list[int],
    report: ExportReport,
) -> pa.Array | None:
    """Pass one: the ids of the best ``keep_per_prompt`` accepted samples of each prompt (shortest first).

    Done in Arrow, one job at a time: three columns sorted, then the first k of each prompt taken, so a
    million samples cost tens of megabytes, not a Python dict per prompt.
    """
    chosen: list[pa.Array] = []
    columns = ["sample_id", "prompt_id", "completion_tokens"]
    if all(options.keep_per_prompt >= n for n in samples_per_prompt):
        # Every accepted sample is kept: nothing to choose, only to count.
        for job_id in options.jobs:
            for path in shard_paths(engine, job_id):
                with store.open(path) as source:
                    report.accepted += pq.read_metadata(source).num_rows
        report.kept_per_prompt = report.accepted
        return None
    for job_id in options.jobs:
        tables = []
        for path in shard_paths(engine, job_id):
            with store.open(path) as source:
                tables.append(pq.read_table(source, columns=columns))
        if not tables:
            continue
        table = pa.concat_tables(tables)
        report.accepted += table.num_rows
        order = pc.sort_indices(
            table,
            sort_keys=[
                ("prompt_id", "ascending"),
                ("completion_tokens", "ascending"),
                ("sample_id", "ascending"),
            ],
        )
        table = table.take(order)
        prompts = table.column("prompt_id").combine_chunks().dictionary_encode().indices.to_numpy()
        starts = np.flatnonzero(np.r_[True, prompts[1:] != prompts[:-1]])
        rank = np.arange(len(prompts)) - np.repeat(starts, np.diff(np.r_[starts, len(prompts)]))
        chosen.append(
            pc.filter(table.column("sample_id"), pa.array(rank < options.keep_per_prompt)).combine_chunks()
        )
    ids = pa.concat_arrays(chosen) if chosen else pa.array([], type=pa.int64())
    report.kept_per_prompt = len(ids)
    pa.default_memory_pool().release_unused()  # the sort's buffers go back to the system
    return ids


@dataclass
class RowFilter:
    """Decontamination, then dedup against everything kept so far (8 bytes a key, see ``KeySet``)."""

    decontaminator: Decontaminator
    seen: KeySet = field(default_factory=KeySet)

    def keep(self, rows: list[Row], *, by_prompt: bool) -> tuple[list[bool], int, int]:
        """Which rows to keep, and how many were contaminated and duplicated."""
        users = [_user_text(row["messages"]) for row in rows]
        clean = [
            not self.decontaminator.contaminated(user, row["task"])
            for user, row in zip(users, rows, strict=True)
        ]
        keys = [
            _key(user) if by_prompt else _key(user, row["messages"][-1]["content"])
            for user, row, ok in zip(users, rows, clean, strict=True)
            if ok
        ]
        fresh = iter(self.seen.add_new(keys).tolist())
        keep = [ok and next(fresh) for ok in clean]
        contaminated = clean.count(False)
        return keep, contaminated, len(rows) - contaminated - keep.count(True)


def eligible_general(options: ExportOptions, rows_filter: RowFilter, report: ExportReport) -> list[int]:
    """Numbers of the general rows that are neither contaminated nor duplicates (of anything kept)."""
    eligible: list[int] = []
    for batch in general_batches(options):
        keep, contaminated, duplicates = rows_filter.keep(batch, by_prompt=False)
        eligible.extend(report.general_available + i for i, ok in enumerate(keep) if ok)
        report.general_available += len(batch)
        report.general_contaminated += contaminated
        report.general_duplicates += duplicates
    return eligible


def learn_templates(
    decontaminator: Decontaminator,
    engine: Engine,
    store: ShardStore,
    options: ExportOptions,
    chosen: pa.Array | None,
) -> None:
    """A first read of the training prompts, where decontamination is asked for: its templates."""
    if decontaminator.grams:
        batches = itertools.chain(reasoning_batches(engine, store, options, chosen), general_batches(options))
        decontaminator.learn_templates(
            (row["task"], _user_text(row["messages"])) for batch in batches for row in batch
        )


def check_jobs(engine: Engine, options: ExportOptions) -> None:
    """Refuse, before any work, a job that does not exist (``JobNotFound``), a student probe (its
    samples are the student's own answers, not training data), and a student difficulty for a job
    whose prompts no student probe measured."""
    with reading(engine) as conn:
        specs = [job_row(conn, job_id).spec for job_id in options.jobs]
    for index, (job_id, spec) in enumerate(zip(options.jobs, specs, strict=True)):
        if spec.get("role") == "student":
            raise InvalidJob(
                f"jobs.{index}: job {job_id} is a student probe (role student): its samples are the "
                "student's own answers, not training data; export the teacher job that took its prompts",
                field=f"jobs.{index}",
            )
        if options.difficulty == "entropy" and not spec.get("soft_labels"):
            raise InvalidJob(
                f"difficulty: job {job_id} asked for no soft labels, so no teacher entropy is known",
                field="difficulty",
            )
        if options.difficulty == "student" and (spec.get("prompts_from") or {}).get("of") != "student":
            raise InvalidJob(
                f"difficulty: job {job_id} took its prompts from no student probe (prompts_from a job of "
                "role student), so no student pass rate is known",
                field="difficulty",
            )

"""Export: accepted reasoning samples mixed with general data into an SFT dataset TRL reads.

Memory stays bounded however large the jobs: a first pass reads only ids and token counts to choose
the samples to keep (the best ``keep_per_prompt`` per prompt: shortest correct); a second pass
streams those rows through dedup and decontamination into randomly chosen temporary buckets; each
bucket is then shuffled and written as the final shards, ``data/{split}-NNNNN-of-NNNNN.parquet`` as the
Hub's dataset viewer reads them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from service.database import jobs
from service.database.db import reading
from service.database.models import Shard, Task
from service.errors import InvalidJob
from service.export.decontaminate import (
    DEFAULT_N,
    DEFAULT_TEMPLATE_MIN_ROWS,
    DEFAULT_TEMPLATE_SHARE,
    Decontaminator,
)
from service.export.inputs import check_inputs, eval_texts, general_row
from service.export.keyset import KeySet
from service.export.soft_labels import student_tokenizer, write_soft_labels
from service.schemas import ExportIn, JobOut
from service.sources import read_rows
from service.storage.stores import ShardStore

MAJORITY = "majority"  # the vote's verifier (verifiers/majority.py, not imported: it loads sympy)
BATCH_ROWS = 1_024  # rows decoded into Python at once while streaming: small keeps the peak low
PROGRESS_EVERY = 5_000
BUCKET_FLUSH_ROWS = 128  # rows held per bucket before they are written: many buckets, little memory
Row = dict[str, Any]
DEFAULT_SHARD_ROWS = 20_000  # a shard is shuffled in memory: this bounds the export's footprint
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SCHEMA = pa.schema(
    [
        ("messages", pa.list_(_MESSAGE)),
        ("source", pa.string()),
        ("job_id", pa.string()),
        ("prompt_id", pa.string()),
        ("teacher", pa.string()),
        ("verifiers", pa.list_(pa.string())),
        ("num_tokens", pa.int32()),
        ("pass_rate", pa.float32()),
        ("reference", pa.string()),
        ("reference_from", pa.string()),
    ]
)
_BUCKET_SCHEMA = SCHEMA.append(pa.field("split", pa.string()))


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; ``reasoning_share`` is reasoning / (reasoning + general)."""

    jobs: tuple[str, ...]
    output: Path
    general: tuple[Path, ...] = ()
    reasoning_share: float = 0.8
    keep_per_prompt: int = 1
    template: Literal["think", "answer_tag"] = "think"
    format: Literal["messages", "prompt-completion"] = "messages"
    seed: int = 0
    test_size: float = 0.0
    decontaminate: tuple[Path, ...] = ()
    ngram: int = DEFAULT_N
    template_share: float = DEFAULT_TEMPLATE_SHARE
    template_min_rows: int = DEFAULT_TEMPLATE_MIN_ROWS
    shard_rows: int = DEFAULT_SHARD_ROWS
    license: str = "other"
    student_tokenizer: str | None = None  # set: soft labels are exported too (soft_labels/)

    @classmethod
    def from_request(cls, request: ExportIn, output: Path) -> ExportOptions:
        """The options of a validated request (from the API or the command line)."""
        return cls(
            jobs=tuple(request.jobs),
            output=output,
            general=tuple(Path(p) for p in request.general),
            reasoning_share=request.reasoning_share,
            keep_per_prompt=request.keep_per_prompt,
            template=request.template,
            format=request.format,
            seed=request.seed,
            test_size=request.test_size,
            decontaminate=tuple(Path(p) for p in request.decontaminate),
            ngram=request.ngram,
            template_share=request.template_share,
            template_min_rows=request.template_min_rows,
            shard_rows=request.shard_rows,
            license=request.license,
            student_tokenizer=request.student_tokenizer if request.soft_labels else None,
        )


@dataclass
class ExportReport:
    """Counts at each step; the card shows them."""

    accepted: int = 0
    kept_per_prompt: int = 0
    reasoning_duplicates: int = 0
    reasoning_contaminated: int = 0
    reasoning: int = 0
    general_available: int = 0
    general_duplicates: int = 0
    general_contaminated: int = 0
    general: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    soft_labeled: int = 0
    note: str = ""
    contamination: dict[str, Any] = field(default_factory=dict)  # Decontaminator.report()

    def add_note(self, text: str) -> None:
        """A warning for the export's reader: printed, and quoted at the top of the card."""
        self.note = f"{self.note} {text}" if self.note else text


def assistant_turn(think: str | None, answer: str | None, template: str) -> str:
    """The teacher's turn as the student should learn to write it."""
    think, answer = (think or "").strip(), (answer or "").strip()
    if template == "answer_tag":
        return f"<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"
    return f"<think>\n{think}\n</think>\n\n{answer}"


def _key(*texts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _user_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


def _shards(engine: Engine, job_id: str) -> list[str]:
    with reading(engine) as conn:
        return list(
            conn.execute(
                select(Shard.path).where(Shard.job_id == job_id, Shard.kind == "accepted").order_by(Shard.id)
            ).scalars()
        )


def _choose(
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
            for path in _shards(engine, job_id):
                with store.open(path) as source:
                    report.accepted += pq.read_metadata(source).num_rows
        report.kept_per_prompt = report.accepted
        return None
    for job_id in options.jobs:
        tables = []
        for path in _shards(engine, job_id):
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


def _pass_rates(engine: Engine, job_id: str, prompt_ids: list[str]) -> dict[str, float]:
    """Accepted / sampled of these prompts (looked up a batch at a time, to keep memory flat)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(Task.prompt_id, Task.n_accepted, Task.n_samples).where(
                Task.job_id == job_id, Task.prompt_id.in_(prompt_ids), Task.n_samples > 0
            )
        ).all()
    return {prompt_id: accepted / sampled for prompt_id, accepted, sampled in rows}


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


def _reasoning_batches(
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
    ]
    for job_id in options.jobs:
        for path in _shards(engine, job_id):
            with store.open(path) as source:  # decoded a row group at a time, never the whole shard
                for batch in pq.ParquetFile(source).iter_batches(BATCH_ROWS, columns=columns):
                    kept = (
                        batch
                        if chosen is None
                        else batch.filter(pc.is_in(batch.column("sample_id"), value_set=chosen))
                    )
                    if kept.num_rows:
                        yield _reasoning_rows(engine, job_id, kept.to_pylist(), options)


def _reasoning_rows(
    engine: Engine, job_id: str, rows: list[dict[str, Any]], options: ExportOptions
) -> list[Row]:
    """Shard rows as SFT rows: the prompt's turns plus the assistant's, and where they came from."""
    prompt_ids = sorted({r["prompt_id"] for r in rows})
    rates = _pass_rates(engine, job_id, prompt_ids)
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


def _general_batches(options: ExportOptions) -> Iterator[list[Row]]:
    """The usable general rows, a batch at a time, in the same order on every read."""
    numbered = enumerate(row for path in options.general for row in read_rows(path))
    formatted = (general_row(row, number) for number, row in numbered)
    yield from _batched((row for row in formatted if row is not None), BATCH_ROWS)


def _batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class _Buckets:
    """Temporary files the rows are spread over at random, for a bounded-memory shuffle.

    Arrow IPC streams rather than Parquet: a Parquet writer keeps every row group's metadata in memory
    for its footer, which across tens of thousands of small row groups was tens of megabytes.
    """

    def __init__(self, folder: Path, count: int, rng: random.Random, test_size: float) -> None:
        self.folder, self.rng, self.test_size = folder, rng, test_size
        self.paths = [folder / f"bucket-{i:05d}.arrows" for i in range(count)]
        self.pending: list[list[Row]] = [[] for _ in range(count)]
        self.writers: list[pa.ipc.RecordBatchStreamWriter | None] = [None] * count

    def add(self, row: Row) -> None:
        index = self.rng.randrange(len(self.paths))
        row["split"] = "test" if self.rng.random() < self.test_size else "train"
        self.pending[index].append(row)
        if len(self.pending[index]) >= BUCKET_FLUSH_ROWS:
            self._flush(index)

    def _flush(self, index: int) -> None:
        if not self.pending[index]:
            return
        writer = self.writers[index] or pa.ipc.new_stream(self.paths[index], _BUCKET_SCHEMA)
        self.writers[index] = writer
        writer.write_table(pa.Table.from_pylist(self.pending[index], schema=_BUCKET_SCHEMA))
        self.pending[index] = []

    def close(self) -> list[Path]:
        for index in range(len(self.paths)):
            self._flush(index)
            writer = self.writers[index]
            if writer is not None:
                writer.close()
        return [p for p in self.paths if p.exists()]


@dataclass
class _Filter:
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


def _eligible_general(options: ExportOptions, rows_filter: _Filter, report: ExportReport) -> list[int]:
    """Numbers of the general rows that are neither contaminated nor duplicates (of anything kept)."""
    eligible: list[int] = []
    for batch in _general_batches(options):
        keep, contaminated, duplicates = rows_filter.keep(batch, by_prompt=False)
        eligible.extend(report.general_available + i for i, ok in enumerate(keep) if ok)
        report.general_available += len(batch)
        report.general_contaminated += contaminated
        report.general_duplicates += duplicates
    return eligible


def as_prompt_completion(table: pa.Table) -> pa.Table:
    """``messages`` split into TRL's conversational prompt-completion columns: ``prompt``, the turns
    before the assistant's, and ``completion``, the assistant turn (each row ends with it)."""
    turns = table.column("messages").to_pylist()
    prompt = pa.array([t[:-1] for t in turns], pa.list_(_MESSAGE))
    completion = pa.array([t[-1:] for t in turns], pa.list_(_MESSAGE))
    at = table.schema.get_field_index("messages")
    return table.set_column(at, "prompt", prompt).add_column(at + 1, "completion", completion)


def _finish(
    bucket_paths: list[Path], data: Path, rng: random.Random, report: ExportReport, options: ExportOptions
) -> None:
    """Shuffle each bucket and write it out, one shard per bucket and split, named as the Hub expects."""
    written: dict[str, list[Path]] = {"train": [], "test": []}
    for number, path in enumerate(bucket_paths):
        with pa.ipc.open_stream(pa.OSFile(str(path))) as reader:
            table = reader.read_all()
        table = table.take(pa.array(rng.sample(range(table.num_rows), table.num_rows), type=pa.int64()))
        for split in ("train", "test"):
            part = table.filter(pc.equal(table.column("split"), split)).drop_columns(["split"])
            if options.format == "prompt-completion":
                part = as_prompt_completion(part)
            if part.num_rows:
                target = data / f".{split}-{number:05d}.parquet"
                pq.write_table(part, target, compression="zstd")
                written[split].append(target)
                report.splits[split] = report.splits.get(split, 0) + part.num_rows
    for split, paths in written.items():
        for index, path in enumerate(paths):
            final = data / f"{split}-{index:05d}-of-{len(paths):05d}.parquet"
            path.rename(final)
            report.files.append(final.relative_to(data.parent).as_posix())


def _learn_templates(
    decontaminator: Decontaminator,
    engine: Engine,
    store: ShardStore,
    options: ExportOptions,
    chosen: pa.Array | None,
) -> None:
    """A first read of the training prompts, where decontamination is asked for: its templates."""
    if decontaminator.grams:
        batches = itertools.chain(
            _reasoning_batches(engine, store, options, chosen), _general_batches(options)
        )
        decontaminator.learn_templates(
            (row["task"], _user_text(row["messages"])) for batch in batches for row in batch
        )


def export(
    engine: Engine,
    store: ShardStore,
    options: ExportOptions,
    on_progress: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the dataset folder (``data/`` shards and a ``README.md`` card); returns the counts."""
    if not 0 < options.reasoning_share <= 1:
        raise InvalidJob("reasoning_share must be in (0, 1]", field="reasoning_share")
    if options.output.exists() and any(options.output.iterdir()):
        raise InvalidJob(f"{options.output} is not empty", field="output")
    check_inputs(options.general, options.decontaminate)
    job_views = [jobs.get_job(engine, job_id) for job_id in options.jobs]  # JobNotFound for a bad id
    tokenizer = (
        student_tokenizer(options.student_tokenizer, job_views) if options.student_tokenizer else None
    )  # refused before any work is done
    existed = options.output.exists()
    try:
        return _write(
            engine, store, options, on_progress=on_progress, job_views=job_views, tokenizer=tokenizer
        )
    except BaseException:
        # A failed export leaves no half-written dataset behind: its folder goes (emptied, if the
        # caller made it), and the error says why.
        shutil.rmtree(options.output, ignore_errors=True)
        if existed:
            options.output.mkdir(parents=True, exist_ok=True)
        raise


def _write(
    engine: Engine,
    store: ShardStore,
    options: ExportOptions,
    *,
    on_progress: Callable[[int], None] | None,
    job_views: list[JobOut],
    tokenizer: Any,
) -> ExportReport:
    """The export's passes, into ``options.output``."""
    from service.export.card import render_card

    report, rng = ExportReport(), random.Random(options.seed)
    decontaminator = Decontaminator(
        eval_texts(options.decontaminate), options.ngram, options.template_share, options.template_min_rows
    )
    chosen = _choose(engine, store, options, [job.spec["n"] for job in job_views], report)
    _learn_templates(decontaminator, engine, store, options, chosen)
    share = Fraction(options.reasoning_share).limit_denominator(1000)
    work, data = options.output / ".export-tmp", options.output / "data"
    work.mkdir(parents=True)
    data.mkdir()
    expected = report.kept_per_prompt + round(report.kept_per_prompt * (1 - share) / share)
    buckets = _Buckets(work, max(1, math.ceil(expected / options.shard_rows)), rng, options.test_size)
    rows_filter = _Filter(decontaminator)
    kept_ids: list[int] = []
    for batch in _reasoning_batches(engine, store, options, chosen):
        keep, contaminated, duplicates = rows_filter.keep(batch, by_prompt=options.keep_per_prompt == 1)
        before = report.reasoning
        for row in itertools.compress(batch, keep):
            buckets.add(row)
            report.reasoning += 1
            if tokenizer is not None:
                kept_ids.append(row["sample_id"])
        report.reasoning_contaminated += contaminated
        report.reasoning_duplicates += duplicates
        if on_progress is not None and report.reasoning // PROGRESS_EVERY > before // PROGRESS_EVERY:
            on_progress(report.reasoning)
    eligible = _eligible_general(options, rows_filter, report)
    wanted = round(report.reasoning * (1 - share) / share)
    take = set(rng.sample(eligible, min(wanted, len(eligible))))
    number = 0
    for batch in _general_batches(options):
        for row in batch:
            if number in take:
                buckets.add(row)
                report.general += 1
            number += 1
    if report.general < wanted:
        actual = report.reasoning / max(1, report.reasoning + report.general)
        report.add_note(
            f"General data ran short: {report.general} rows used of the {wanted} a {float(share):.0%} "
            f"reasoning mix needs ({report.general_available} available); the mix is {actual:.1%} reasoning."
        )
    _finish(buckets.close(), data, rng, report, options)
    if options.test_size and not report.splits.get("test"):
        report.add_note(
            f"No test split: each row goes to it with probability test_size ({options.test_size:g}), and "
            f"none of the {report.splits.get('train', 0)} rows did; ask for a larger test_size or export "
            "more rows."
        )
    shutil.rmtree(work)
    report.contamination = decontaminator.report() if decontaminator.grams else {}
    if tokenizer is not None:
        kept = np.sort(np.asarray(kept_ids, dtype=np.int64))
        report.soft_labeled = write_soft_labels(
            engine,
            store,
            job_ids=options.jobs,
            kept=kept,
            tokenizer=tokenizer,
            folder=options.output / "soft_labels",
        )
    (options.output / "README.md").write_text(render_card(options, report, job_views), encoding="utf-8")
    return report

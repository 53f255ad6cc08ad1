"""Export: accepted reasoning samples mixed with general data into an SFT dataset TRL reads.

Memory stays bounded however large the jobs: a first pass reads only ids and token counts to choose
the samples to keep (the best ``keep_per_prompt`` per prompt: shortest correct); a second pass
streams those rows through dedup and decontamination into randomly chosen temporary buckets; each
bucket is then shuffled and written as the final shards, ``data/{split}-NNNNN-of-NNNNN.parquet`` as the
Hub's dataset viewer reads them. ``selection.py`` chooses the rows, ``rows.py`` reads them; this module
mixes, shuffles and writes.
"""

from __future__ import annotations

import itertools
import math
import random
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine

from service.database import jobs
from service.errors import InvalidJob
from service.export.buckets import PLAIN_BAND, UNKNOWN_BAND, Buckets
from service.export.decontaminate import (
    Decontaminator,
)
from service.export.figure import FILE as FIGURE
from service.export.figure import difficulty_svg
from service.export.inputs import check_inputs, eval_texts
from service.export.options import ExportOptions, ExportReport
from service.export.rows import MESSAGE, Row, general_batches, reasoning_batches
from service.export.selection import RowFilter, check_jobs, choose_samples, eligible_general, learn_templates
from service.export.soft_labels import student_tokenizer, write_soft_labels
from service.responses import JobOut
from service.storage.stores import ShardStore

PROGRESS_EVERY = 5_000


def as_prompt_completion(table: pa.Table) -> pa.Table:
    """``messages`` split into TRL's conversational prompt-completion columns: ``prompt``, the turns
    before the assistant's, and ``completion``, the assistant turn (each row ends with it)."""
    turns = table.column("messages").to_pylist()
    prompt = pa.array([t[:-1] for t in turns], pa.list_(MESSAGE))
    completion = pa.array([t[-1:] for t in turns], pa.list_(MESSAGE))
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


def _in_range(batch: list[Row], options: ExportOptions, report: ExportReport) -> list[Row]:
    """The rows whose difficulty is within the export's pass-rate bounds (all, with no bounds)."""
    if options.min_pass_rate == 0 and options.max_pass_rate == 1:
        return batch
    column = options.difficulty_column
    kept = [
        r
        for r in batch
        if r[column] is not None and options.min_pass_rate <= r[column] <= options.max_pass_rate
    ]
    report.out_of_range += len(batch) - len(kept)
    return kept


def _add_reasoning(row: Row, buckets: Buckets, options: ExportOptions, report: ExportReport) -> None:
    """A kept reasoning row into its band (by difficulty, in a curriculum), counted by difficulty."""
    value = row[options.difficulty_column]
    if options.difficulty == "entropy" and value is not None:
        # Entropies banded by a tenth of a nat; bands go highest first, so the lowest (the surest)
        # entropy goes first as the highest negative.
        value = -round(value, 1)
    level = "unknown" if value is None else f"{abs(value):.4g}"
    report.difficulty[level] = report.difficulty.get(level, 0) + 1
    curriculum = options.order == "curriculum"
    buckets.add(row, (UNKNOWN_BAND if value is None else value) if curriculum else PLAIN_BAND)
    report.reasoning += 1


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
    check_jobs(engine, options)
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
    chosen = choose_samples(engine, store, options, [job.spec["n"] for job in job_views], report)
    learn_templates(decontaminator, engine, store, options, chosen)
    share = Fraction(options.reasoning_share).limit_denominator(1000)
    work, data = options.output / ".export-tmp", options.output / "data"
    work.mkdir(parents=True)
    data.mkdir()
    expected = report.kept_per_prompt + round(report.kept_per_prompt * (1 - share) / share)
    buckets = Buckets(work, max(1, math.ceil(expected / options.shard_rows)), rng, options.test_size)
    rows_filter = RowFilter(decontaminator)
    kept_ids: list[int] = []
    for read in reasoning_batches(engine, store, options, chosen):
        batch = _in_range(read, options, report)
        keep, contaminated, duplicates = rows_filter.keep(batch, by_prompt=options.keep_per_prompt == 1)
        before = report.reasoning
        for row in itertools.compress(batch, keep):
            _add_reasoning(row, buckets, options, report)
            if tokenizer is not None:
                kept_ids.append(row["sample_id"])
        report.reasoning_contaminated += contaminated
        report.reasoning_duplicates += duplicates
        if on_progress is not None and report.reasoning // PROGRESS_EVERY > before // PROGRESS_EVERY:
            on_progress(report.reasoning)
    if report.out_of_range:
        report.add_note(
            f"{report.out_of_range} reasoning rows were outside the {options.difficulty} pass-rate bounds "
            f"({options.min_pass_rate:g} to {options.max_pass_rate:g}) and were left out; "
            f"{report.reasoning} remain."
        )
    eligible = eligible_general(options, rows_filter, report)
    wanted = round(report.reasoning * (1 - share) / share)
    take = set(rng.sample(eligible, min(wanted, len(eligible))))
    bands = buckets.bands() or [PLAIN_BAND]  # a curriculum has general rows all along its way
    number = 0
    for batch in general_batches(options):
        for row in batch:
            if number in take:
                buckets.add(row, rng.choice(bands))
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
    if report.difficulty:
        figure = difficulty_svg(report.difficulty, f"Reasoning rows by the {options.difficulty_label}")
        (options.output / FIGURE).write_text(figure, encoding="utf-8")
    (options.output / "README.md").write_text(render_card(options, report, job_views), encoding="utf-8")
    return report

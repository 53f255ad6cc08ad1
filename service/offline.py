"""Verify existing data without a job: ``tracemill verify`` over a file or a single completion."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.errors import InvalidJob
from verifiers.base import Candidate, NamedVerdict
from verifiers.runner import VerifierRunner, VerifierSpec
from workers.reasoning import split_completion

BATCH_ROWS = 32
ROWS_IN_FLIGHT = 1_024


def candidate_of(row: dict[str, Any], completion_field: str, reference_field: str) -> Candidate:
    """A row as verifiers see it; ``tests`` may be a list or its JSON text, ``prompt`` gives the language."""
    if not isinstance(row.get(completion_field), str):
        columns = ", ".join(row)
        raise InvalidJob(
            f"row has no text column {completion_field!r} (columns: {columns})", field="completion"
        )
    split = split_completion(row[completion_field])
    tests = row.get("tests")
    tests = json.loads(tests) if isinstance(tests, str) else tests
    prompt = row.get("prompt")
    reference = row.get(reference_field)
    return Candidate(
        completion=split.completion,
        think=split.think,
        answer=split.answer,
        finish_reason=row.get("finish_reason"),
        completion_tokens=int(row.get("completion_tokens") or 0),
        messages=({"role": "user", "content": prompt},) if isinstance(prompt, str) else (),
        reference=None if reference is None else str(reference),
        tests=tuple(tests) if tests else None,
    )


def with_verdicts(row: dict[str, Any], verdicts: list[NamedVerdict]) -> dict[str, Any]:
    """The row with its overall verdict and every verifier's, details as JSON text."""
    reasons = [v.reason for v in verdicts if v.reason]
    return {
        **row,
        "accepted": all(v.accepted for v in verdicts),
        "reason": reasons[0] if reasons else None,
        "reasons": reasons,
        "verdicts": [
            {
                "verifier": v.verifier,
                "accepted": v.accepted,
                "reason": v.reason,
                "details": json.dumps(v.details),
            }
            for v in verdicts
        ],
    }


async def _verify_window(
    runner: VerifierRunner, specs: list[VerifierSpec], rows: list[dict[str, Any]], candidates: list[Candidate]
) -> list[dict[str, Any]]:
    batches = [range(i, min(i + BATCH_ROWS, len(rows))) for i in range(0, len(rows), BATCH_ROWS)]
    results = await asyncio.gather(
        *(runner.verify(specs, [candidates[i] for i in batch]) for batch in batches)
    )
    return [
        with_verdicts(rows[i], verdicts)
        for batch, out in zip(batches, results, strict=True)
        for i, verdicts in zip(batch, out, strict=True)
    ]


def verify_rows(
    rows: Iterable[dict[str, Any]],
    specs: list[VerifierSpec],
    runner: VerifierRunner,
    *,
    completion_field: str = "completion",
    reference_field: str = "reference",
) -> Iterator[dict[str, Any]]:
    """Stream rows out with verdicts, a bounded window at a time, batches spread over the pool."""
    window: list[dict[str, Any]] = []
    for row in rows:
        window.append(row)
        if len(window) == ROWS_IN_FLIGHT:
            yield from _run(window, specs, runner, completion_field, reference_field)
            window = []
    if window:
        yield from _run(window, specs, runner, completion_field, reference_field)


def _run(
    rows: list[dict[str, Any]],
    specs: list[VerifierSpec],
    runner: VerifierRunner,
    completion_field: str,
    reference_field: str,
) -> list[dict[str, Any]]:
    candidates = [candidate_of(r, completion_field, reference_field) for r in rows]
    return asyncio.run(_verify_window(runner, specs, rows, candidates))


def write_rows(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Write rows as JSONL or Parquet (by suffix); returns how many."""
    count = 0
    if path.suffix == ".parquet":
        writer: pq.ParquetWriter | None = None
        try:
            for chunk in _chunks(rows, ROWS_IN_FLIGHT):
                table = (
                    pa.Table.from_pylist(chunk)
                    if writer is None
                    else pa.Table.from_pylist(chunk, writer.schema)
                )
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
                count += len(chunk)
        finally:
            if writer is not None:
                writer.close()
        return count
    if path.suffix != ".jsonl":
        raise InvalidJob(f"{path}: the output must end in .jsonl or .parquet", field="output")
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

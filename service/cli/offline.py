"""Verify existing data without a job: ``tracemill verify`` over a file or a single completion."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.errors import InvalidJob
from service.reasoning import split_completion
from verifiers.base import Candidate, NamedVerdict
from verifiers.language import SCRIPTS_OF, target_language
from verifiers.runner import VerifierRunner, VerifierSpec

BATCH_ROWS = 32
ROWS_IN_FLIGHT = 1_024


@dataclass(frozen=True)
class Columns:
    """Which column of the rows holds what; ``language`` (optional) names a column with each row's
    target language for ``langmix`` (``auto`` otherwise reads it from the prompt column)."""

    completion: str = "completion"
    reference: str = "reference"
    prompt: str = "prompt"
    language: str | None = None


def candidate_of(row: dict[str, Any], columns: Columns = Columns()) -> Candidate:
    """A row as verifiers see it; ``tests`` in any layout ``verifiers/code/test_layouts.py`` reads, the
    prompt a text or a list of chat messages."""
    if not isinstance(row.get(columns.completion), str):
        raise InvalidJob(
            f"row has no text column {columns.completion!r} (columns: {', '.join(row)})", field="completion"
        )
    split = split_completion(row[columns.completion])
    reference = row.get(columns.reference)
    return Candidate(
        completion=split.completion,
        think=split.think,
        answer=split.answer,
        finish_reason=row.get("finish_reason"),
        completion_tokens=int(row.get("completion_tokens") or 0),
        messages=_messages(row.get(columns.prompt)),
        reference=None if reference is None else str(reference),
        tests=row.get("tests") or None,
        extra=_language_of(row, columns.language),
    )


def _messages(prompt: Any) -> tuple[dict[str, str], ...]:
    if isinstance(prompt, str):
        return ({"role": "user", "content": prompt},)
    if isinstance(prompt, list):
        turns = [m for m in prompt if isinstance(m, dict)]
        return tuple({"role": str(m.get("role")), "content": str(m.get("content"))} for m in turns)
    return ()


def _language_of(row: dict[str, Any], column: str | None) -> dict[str, Any]:
    """``{"language": code}`` from the row's language column (``zh-CN`` counts as ``zh``), if any."""
    value = row.get(column) if column else None
    if value is None or value == "":
        return {}
    code = target_language(str(value))
    if code is None:
        raise InvalidJob(
            f"column {column!r}: {str(value)[:40]!r} is not a language langmix knows "
            f"({', '.join(SCRIPTS_OF)})",
            field="language",
        )
    return {"language": code}


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
    columns: Columns = Columns(),
) -> Iterator[dict[str, Any]]:
    """Stream rows out with verdicts, a bounded window at a time, batches spread over the pool."""
    window: list[dict[str, Any]] = []
    for row in rows:
        window.append(row)
        if len(window) == ROWS_IN_FLIGHT:
            yield from _run(window, specs, runner, columns)
            window = []
    if window:
        yield from _run(window, specs, runner, columns)


def _run(
    rows: list[dict[str, Any]],
    specs: list[VerifierSpec],
    runner: VerifierRunner,
    columns: Columns,
) -> list[dict[str, Any]]:
    candidates = [candidate_of(r, columns) for r in rows]
    return asyncio.run(_verify_window(runner, specs, rows, candidates))


def write_rows(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Write rows as JSONL or Parquet (by suffix); returns how many. The file appears whole or not
    at all: rows go to a hidden file beside it, renamed into place once the last is written."""
    if path.suffix not in (".jsonl", ".parquet"):
        raise InvalidJob(f"{path}: the output must end in .jsonl or .parquet", field="output")
    partial = path.with_name(f".{path.name}.partial")
    try:
        count = _write_parquet(rows, partial) if path.suffix == ".parquet" else _write_jsonl(rows, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _write_parquet(rows: Iterable[dict[str, Any]], path: Path) -> int:
    count, writer = 0, None
    try:
        for chunk in _chunks(rows, ROWS_IN_FLIGHT):
            schema = None if writer is None else writer.schema
            table = pa.Table.from_pylist(chunk, schema)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            count += len(chunk)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no rows: an empty file with no columns
        pq.write_table(pa.table({}), path)
    return count


def _write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    count = 0
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

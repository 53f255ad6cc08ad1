"""Read prompt sets users bring (JSONL, Parquet, a saved ``datasets`` folder) in their own column names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.errors import InvalidJob

BATCH_ROWS = 5_000


@dataclass(frozen=True)
class Fields:
    """Which columns hold what; ``id`` falls back to the row number when the column is absent."""

    prompt: str = "prompt"
    id: str = "id"
    reference: str = "reference"
    tests: str = "tests"
    split: str = "train"
    metadata: tuple[str, ...] = ("metadata",)


def read_rows(path: Path, split: str = "train") -> Iterator[dict[str, Any]]:
    """Rows of a JSONL or Parquet file or a saved datasets folder, as dicts, streamed."""
    if not path.exists():
        raise InvalidJob(f"{path} does not exist", field="input")
    if path.is_dir():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise InvalidJob(f"split {split!r} not in {path}; splits: {', '.join(loaded)}", field="split")
            loaded = loaded[split]
        yield from loaded
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            yield from batch.to_pylist()
    elif path.suffix in (".jsonl", ".json"):
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InvalidJob(f"{path}:{number}: not JSON: {exc}", field="input") from exc
    else:
        raise InvalidJob(f"{path}: expected a .jsonl or .parquet file or a datasets folder", field="input")


def read_prompts(path: Path, fields: Fields) -> Iterator[dict[str, Any]]:
    """Prompts in the API's shape (``id``, ``prompt`` or ``messages``, ``reference``, ``tests``,
    ``metadata``)."""
    for number, row in enumerate(read_rows(path, fields.split)):
        if fields.prompt not in row:
            columns = ", ".join(row)
            raise InvalidJob(
                f"row {number} has no column {fields.prompt!r} (columns: {columns}); "
                "name the prompt column with --prompt-field",
                field="prompt_field",
            )
        text = row[fields.prompt]
        prompt: dict[str, Any] = {"id": str(row.get(fields.id, number))}
        prompt["messages" if isinstance(text, list) else "prompt"] = text
        if row.get(fields.reference) is not None:
            prompt["reference"] = str(row[fields.reference])
        if row.get(fields.tests) is not None:  # as the dataset stores them: the code verifier reads them
            prompt["tests"] = row[fields.tests]
        metadata = _metadata(row, fields.metadata, number)
        if metadata is not None:
            prompt["metadata"] = metadata
        yield prompt


def _metadata(row: dict[str, Any], columns: tuple[str, ...], number: int) -> dict[str, Any] | None:
    """The prompt's metadata: one column holding an object (or its JSON text) as it is, several
    columns as an object of them; None where the row has none of them."""
    present = [c for c in columns if row.get(c) is not None]
    if not present:
        return None
    if len(columns) > 1:
        return {c: row[c] for c in present}
    value = row[present[0]]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise InvalidJob(
            f"row {number}: column {present[0]!r} is not an object; name several columns with "
            "--metadata-field to gather them into one",
            field="metadata_field",
        )
    return value

"""Dataset presets: the prompt sets people distil from, read in their own columns.

A preset maps a dataset's row to a prompt (text, reference, tests, metadata), says which rows it
cannot use and why (a proof has no final answer to check; a Codeforces problem with a checker accepts
several outputs), and chooses the job's verifiers and, for code, a prompt template. Tests stay as the
dataset stores them wherever one column holds them (``verifiers/code/test_layouts.py`` reads every
layout); where several columns do, they are read here, so a malformed one fails at submission.
This room reads files and imports ``service.sources`` and ``verifiers``; nothing of the service's
store or API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.errors import InvalidJob
from service.presets.code_sets import CODE_SETS
from service.presets.math_sets import MATH_SETS
from service.presets.preset import Preset, Row
from service.sources import read_rows

PRESETS = {p.name: p for p in MATH_SETS + CODE_SETS}
__all__ = ["PRESETS", "Preset", "preset_named", "read_preset"]


def preset_named(name: str) -> Preset:
    if name not in PRESETS:
        raise InvalidJob(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}", field="preset")
    return PRESETS[name]


def _prompt_of(preset: Preset, row: Row, number: int) -> dict[str, Any]:
    prompt: dict[str, Any] = {
        "id": str(row[preset.id]) if preset.id and row.get(preset.id) is not None else str(number),
        "prompt": preset.prompt(row),
    }
    reference = preset.reference(row)
    if reference is not None:
        prompt["reference"] = reference
    tests = preset.tests(row)
    if tests is not None:
        prompt["tests"] = tests
    metadata = {c: _plain(row[c]) for c in preset.metadata if row.get(c) is not None}
    metadata |= preset.metadata_of(row)
    if metadata:
        prompt["metadata"] = metadata
    return prompt


def _plain(value: Any) -> Any:
    """A column value as JSON can carry it (a Parquet timestamp becomes its ISO text)."""
    return value if isinstance(value, str | int | float | bool | list | dict) else str(value)


def read_preset(path: Path, preset: Preset, split: str, skipped: Counter[str]) -> Iterator[dict[str, Any]]:
    """Prompts of a dataset file through its preset; rows it cannot use are counted in ``skipped``
    by reason. A row without one of the preset's columns is an error naming both."""
    for number, row in enumerate(read_rows(path, split)):
        missing = [c for c in preset.columns if c not in row]
        if missing:
            raise InvalidJob(
                f"preset {preset.name!r}: row {number} has no column {missing[0]!r} "
                f"(it needs {', '.join(preset.columns)}; the row has {', '.join(row)})",
                field="preset",
            )
        try:
            reason = preset.skip(row)
            if reason is None:
                prompt = _prompt_of(preset, row, number)
                if prompt.get(preset.needs) or preset.missing is None:
                    yield prompt
                    continue
                reason = preset.missing
        except ValueError as exc:  # tests that do not read (BadTests), a metadata text not JSON
            raise InvalidJob(f"preset {preset.name!r}: row {number}: {exc}", field="preset") from exc
        skipped[reason] += 1

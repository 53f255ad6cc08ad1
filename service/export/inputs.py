"""The files an export reads (general data, evaluation sets), checked before it starts: a wrong path
or a file of the wrong shape is the request's 422, naming the field, rather than a failed export later.

Only what is cheap is checked: that each file exists and is of a kind ``read_rows`` reads, and that its
first row can be used. A bad row further in still fails the export, with its line number.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.errors import InvalidJob
from service.sources import read_rows

ROW_FILES = (".jsonl", ".json", ".parquet")
EVAL_TEXT_COLUMNS = ("problem", "prompt", "question", "text", "input")  # an evaluation row's text
# A general row without `messages`: its prompt and its response, from the first of these columns set.
PROMPT_COLUMNS = ("prompt", "instruction", "question")
RESPONSE_COLUMNS = ("response", "output", "answer")
# What ``datasets.save_to_disk`` leaves in a folder: one split, or a dict of splits.
SAVED_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


def eval_texts(paths: tuple[Path, ...]) -> Iterator[str]:
    """The text of every evaluation row, for decontamination."""
    for path in paths:
        for row in read_rows(path):
            text = _eval_text(row)
            if text is None:
                raise InvalidJob(
                    f"{path}: no text column among {', '.join(EVAL_TEXT_COLUMNS)}", field="decontaminate"
                )
            yield text


def _eval_text(row: dict[str, Any]) -> str | None:
    """An evaluation row's text: its first text column of ``EVAL_TEXT_COLUMNS``."""
    return next((row[c] for c in EVAL_TEXT_COLUMNS if isinstance(row.get(c), str)), None)


def check_inputs(general: Sequence[Path], decontaminate: Sequence[Path]) -> None:
    """Raise ``InvalidJob`` (field ``general.N`` or ``decontaminate.N``) for the first file an export
    could not read."""
    for index, path in enumerate(general):
        first = _first_row(path, f"general.{index}")
        if first is not None and general_row(first, 0) is None:
            raise InvalidJob(
                f"{path}: its first row is no general sample: it needs `messages` ending with an assistant "
                f"turn, or a prompt ({_columns(PROMPT_COLUMNS)}) and a response "
                f"({_columns(RESPONSE_COLUMNS)}); its columns: {', '.join(sorted(first)) or 'none'}",
                field=f"general.{index}",
            )
    for index, path in enumerate(decontaminate):
        first = _first_row(path, f"decontaminate.{index}")
        if first is not None and _eval_text(first) is None:
            raise InvalidJob(
                f"{path}: no text column among {', '.join(EVAL_TEXT_COLUMNS)} in its first row; its columns: "
                f"{', '.join(sorted(first)) or 'none'}",
                field=f"decontaminate.{index}",
            )


def _columns(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _first_row(path: Path, field: str) -> dict[str, Any] | None:
    """The file's first row (None for an empty file), or the reason it cannot be read."""
    if not path.exists():
        raise InvalidJob(f"{path} does not exist", field=field)
    if path.is_dir() and not any((path / name).is_file() for name in SAVED_DATASET_FILES):
        raise InvalidJob(
            f"{path} is a folder but no saved dataset (datasets' save_to_disk writes "
            f"{' or '.join(SAVED_DATASET_FILES)}); name a .jsonl or .parquet file or such a folder",
            field=field,
        )
    if path.is_file() and path.suffix not in ROW_FILES:
        raise InvalidJob(
            f"{path}: expected a .jsonl or .parquet file or a saved datasets folder", field=field
        )
    try:
        first = next(iter(read_rows(path)), None)
    except InvalidJob as exc:
        raise InvalidJob(exc.message, field=field) from exc
    except Exception as exc:  # a corrupt Parquet file, a folder datasets cannot load: said, not a 500
        raise InvalidJob(f"{path} cannot be read: {type(exc).__name__}: {exc}"[:500], field=field) from exc
    if first is not None and not isinstance(first, dict):
        raise InvalidJob(f"{path}: its first row is not an object", field=field)
    return first


def general_row(row: dict[str, Any], number: int) -> dict[str, Any] | None:
    """A general sample in ``messages`` form, from ``messages`` or prompt/response columns."""
    if isinstance(row.get("messages"), list) and row["messages"]:
        turns = row["messages"]
        if not all(
            isinstance(m, dict) and m.get("role") and isinstance(m.get("content"), str) for m in turns
        ):
            return None  # not chat turns
        messages = [{"role": str(m["role"]), "content": m["content"]} for m in turns]
    else:
        prompt = next((row[c] for c in PROMPT_COLUMNS if row.get(c)), None)
        response = next((row[c] for c in RESPONSE_COLUMNS if row.get(c)), None)
        if not prompt or not response:
            return None
        messages = [{"role": "user", "content": str(prompt)}, {"role": "assistant", "content": str(response)}]
    if messages[-1]["role"] != "assistant":
        return None
    return {
        "messages": messages,
        "source": "general",
        "task": "general",  # not a dataset column
        "job_id": None,
        "prompt_id": str(row.get("id", number)),
        "teacher": None,
        "verifiers": [],
        "num_tokens": None,
        "pass_rate": None,
        "reference": None,
        "reference_from": None,
    }

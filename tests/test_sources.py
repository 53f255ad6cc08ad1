"""Prompt sets in users' own column names, from JSONL, Parquet and a saved datasets folder."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.errors import InvalidJob
from service.sources import Fields, read_prompts

ROWS = [
    {"problem": "Compute 1 + 1.", "solution": "2", "uid": "a", "cases": json.dumps([{"kind": "assert"}])},
    {"problem": "Compute 2 + 2.", "solution": "4", "uid": "b", "cases": None},
]
FIELDS = Fields(prompt="problem", id="uid", reference="solution", tests="cases")
EXPECTED = [
    # Tests as the dataset stores them (a JSON text here): the code verifier reads every layout.
    {"id": "a", "prompt": "Compute 1 + 1.", "reference": "2", "tests": json.dumps([{"kind": "assert"}])},
    {"id": "b", "prompt": "Compute 2 + 2.", "reference": "4"},
]


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    assert list(read_prompts(path, FIELDS)) == EXPECTED


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    assert list(read_prompts(path, FIELDS)) == EXPECTED


def test_datasets_folder_with_messages_and_row_numbers_as_ids(tmp_path: Path) -> None:
    import datasets

    chats = [{"messages": [{"role": "user", "content": f"Compute {i} + {i}."}]} for i in range(3)]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(chats)}).save_to_disk(str(tmp_path / "ds"))
    prompts = list(read_prompts(tmp_path / "ds", Fields(prompt="messages")))
    assert [p["id"] for p in prompts] == ["0", "1", "2"]
    assert prompts[2]["messages"] == [{"role": "user", "content": "Compute 2 + 2."}]
    with pytest.raises(InvalidJob, match="splits: train"):
        list(read_prompts(tmp_path / "ds", Fields(prompt="messages", split="test")))


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n")
    with pytest.raises(InvalidJob, match=r"no column 'prompt'.*problem.*--prompt-field"):
        list(read_prompts(path, Fields()))


def test_bad_input_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidJob, match="does not exist"):
        list(read_prompts(tmp_path / "missing.jsonl", Fields()))
    (tmp_path / "p.csv").write_text("prompt\nx\n")
    with pytest.raises(InvalidJob, match=r"expected a \.jsonl"):
        list(read_prompts(tmp_path / "p.csv", Fields()))
    (tmp_path / "broken.jsonl").write_text('{"prompt": "x"}\n{not json\n')
    with pytest.raises(InvalidJob, match=r"broken\.jsonl:2"):
        list(read_prompts(tmp_path / "broken.jsonl", Fields()))


def test_metadata_from_one_object_column_or_gathered_from_several(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [
        {"prompt": "a", "metadata": {"target": 3}, "level": 1, "tags": ["x"]},
        {"prompt": "b", "metadata": json.dumps({"target": 4}), "level": None, "tags": []},
        {"prompt": "c"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [p.get("metadata") for p in read_prompts(path, Fields())] == [{"target": 3}, {"target": 4}, None]
    gathered = [p.get("metadata") for p in read_prompts(path, Fields(metadata=("level", "tags")))]
    assert gathered == [{"level": 1, "tags": ["x"]}, {"tags": []}, None]
    with pytest.raises(InvalidJob, match=r"row 0: column 'level' is not an object.*--metadata-field"):
        list(read_prompts(path, Fields(metadata=("level",))))

"""Export: a job's accepted samples mixed with general data, loaded back with ``datasets``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from service.database import finishing, jobs, queue
from service.database.finishing import NewSample
from service.errors import InvalidJob
from service.export.mixing import export
from service.export.options import ExportOptions
from service.schemas import JobIn
from service.storage import shards
from service.storage.stores import ShardStore
from verifiers.base import NamedVerdict

PROMPTS = 40
N = 3


def _job_with_shards(engine: Engine, root: Path) -> str:
    """A finished job: prompts p0 and p1 share a text (a duplicate); p2 is in the evaluation set."""
    texts = [
        f"Compute the value of {i} plus {i} times three, and show every step clearly please."
        for i in range(PROMPTS)
    ]
    texts[1] = texts[0]
    job_id = jobs.create_job(
        engine,
        JobIn.model_validate(
            {
                "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "teacher-r1"},
                "n": N,
                "system_prompt": "Reason step by step.",
                "prompts": [
                    {"id": f"p{i}", "prompt": text, "reference": str(i * 4)} for i, text in enumerate(texts)
                ],
            }
        ),
    ).id
    for task in queue.claim(engine, "w", PROMPTS, 30, max_attempts=3):
        samples = [
            NewSample(
                k,
                f"<think>steps for {task.prompt_id}, try {k}</think> The answer is {k}.",
                f"The answer is {k}.",
                "stop",
                10 + k,
                (NamedVerdict("format", k < 2, None if k < 2 else "format:x", {}),),
            )
            for k in range(N)
        ]
        finishing.finish(engine, task, "w", samples, prompt_tokens=5)
    shards.flush_all(engine, ShardStore(root), shard_rows=25)
    return job_id


def _general(path: Path, rows: int) -> Path:
    lines = [
        {"prompt": f"Write a haiku about the number {i}.", "response": f"Haiku {i}."} for i in range(rows)
    ]
    lines.append(lines[0])  # an exact duplicate
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_export_loads_with_datasets_and_the_card_matches(engine: Engine, tmp_path: Path) -> None:
    import datasets

    job_id = _job_with_shards(engine, tmp_path / "shards")
    evals = tmp_path / "eval.jsonl"
    evals.write_text(
        json.dumps({"problem": "Compute the value of 2 plus 2 times three, and show every step"}) + "\n"
    )
    out = tmp_path / "export"
    report = export(
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(
            jobs=(job_id,),
            output=out,
            general=(_general(tmp_path / "general.jsonl", 100),),
            seed=7,
            test_size=0.1,
            decontaminate=(evals,),
            shard_rows=10,
        ),
    )
    assert (report.accepted, report.kept_per_prompt) == (PROMPTS * 2, PROMPTS)
    assert (report.reasoning_duplicates, report.reasoning_contaminated, report.reasoning) == (
        1,
        1,
        PROMPTS - 2,
    )
    assert (report.general_available, report.general_duplicates) == (101, 1)
    assert report.general == round(report.reasoning / 4) and not report.note

    dataset = datasets.load_dataset("parquet", data_dir=str(out / "data"))
    rows = [*dataset["train"], *dataset["test"]]
    assert len(rows) == report.reasoning + report.general == sum(report.splits.values())
    assert 0 < len(dataset["test"]) < len(dataset["train"])
    reasoning = [r for r in rows if r["source"] == "reasoning"]
    assert len(reasoning) / len(rows) == pytest.approx(0.8, abs=0.02)
    for row in reasoning:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        reply = row["messages"][-1]["content"]
        assert re.fullmatch(
            r"<think>\nsteps for p\d+, try 0\n</think>\n\nThe answer is 0\.", reply
        )  # the shortest
        assert row["teacher"] == "teacher-r1" and row["verifiers"] == ["format"]
        assert row["pass_rate"] == pytest.approx(2 / 3)
    assert {r["prompt_id"] for r in reasoning}.isdisjoint({"p1", "p2"})
    assert all(r["messages"][0]["role"] == "user" for r in rows if r["source"] == "general")

    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n")
    assert "path: data/train-*" in card and "path: data/test-*" in card
    assert f"| in the dataset | {report.reasoning} | {report.general} |" in card
    assert "| exact duplicates removed | 1 | 1 |" in card and "removed | 1 | 0 |" in card
    assert all(re.fullmatch(r"data/(train|test)-\d{5}-of-\d{5}\.parquet", f) for f in report.files)


def test_short_general_data_is_reported(engine: Engine, tmp_path: Path) -> None:
    job_id = _job_with_shards(engine, tmp_path / "shards")
    report = export(
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(jobs=(job_id,), output=tmp_path / "out", general=(_general(tmp_path / "g.jsonl", 3),)),
    )
    assert report.general == 3 and "ran short" in report.note
    assert "ran short" in (tmp_path / "out" / "README.md").read_text()


def test_a_test_size_that_drew_no_row_is_said(engine: Engine, tmp_path: Path) -> None:
    job_id = _job_with_shards(engine, tmp_path / "shards")
    options = ExportOptions(jobs=(job_id,), output=tmp_path / "out", reasoning_share=1.0, test_size=0.001)
    report = export(engine, ShardStore(tmp_path / "shards"), options)
    assert "test" not in report.splits and report.note.startswith("No test split: ")
    assert "none of the 39 rows did" in report.note
    assert f"> {report.note}" in (tmp_path / "out" / "README.md").read_text()


def test_answer_tag_template_and_several_per_prompt(engine: Engine, tmp_path: Path) -> None:
    job_id = _job_with_shards(engine, tmp_path / "shards")
    report = export(
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(
            jobs=(job_id,),
            output=tmp_path / "out",
            keep_per_prompt=2,
            template="answer_tag",
            reasoning_share=1.0,
        ),
    )
    assert report.kept_per_prompt == PROMPTS * 2 and report.general == 0
    rows = [r for f in report.files for r in pq.read_table(tmp_path / "out" / f).to_pylist()]
    assert len(rows) == report.reasoning
    assert all(r["messages"][-1]["content"].endswith("</answer>") for r in rows)


def test_refuses_a_non_empty_output(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidJob, match="not empty"):
        export(engine, ShardStore(tmp_path), ExportOptions(jobs=(), output=tmp_path / "out"))


def test_a_student_difficulty_needs_a_probe_behind_the_job(engine: Engine, tmp_path: Path) -> None:
    job_id = _job_with_shards(engine, tmp_path / "shards")
    options = ExportOptions(jobs=(job_id,), output=tmp_path / "out", order="curriculum", difficulty="student")
    with pytest.raises(InvalidJob, match="no student probe") as refused:
        export(engine, ShardStore(tmp_path / "shards"), options)
    assert refused.value.field == "difficulty"
    assert not (tmp_path / "out").exists()


def test_a_curriculum_runs_easy_to_hard_across_its_shards(engine: Engine, tmp_path: Path) -> None:
    job_id = _job_with_shards(engine, tmp_path / "shards")
    general = _general(tmp_path / "general.jsonl", 30)
    out = tmp_path / "out"
    options = ExportOptions(
        jobs=(job_id,), output=out, general=(general,), reasoning_share=0.5, keep_per_prompt=2,
        order="curriculum", shard_rows=100, max_pass_rate=0.9,
    )  # fmt: skip
    report = export(engine, ShardStore(tmp_path / "shards"), options)
    files = sorted((out / "data").glob("train-*.parquet"))
    rows = [row for path in files for row in pq.read_table(path).to_pylist()]
    rates = [r["pass_rate"] for r in rows if r["source"] == "reasoning"]
    assert rates == sorted(rates, reverse=True) and rates
    assert {r["source"] for r in rows} == {"reasoning", "general"}
    assert report.difficulty == {f"{2 / 3:.4g}": report.reasoning}  # every prompt: 2 of 3 accepted
    card = (out / "README.md").read_text()
    assert "## Difficulty" in card and (out / "difficulty.svg").exists()
    banded = ExportOptions(jobs=(job_id,), output=tmp_path / "none", min_pass_rate=0.7)
    nothing = export(engine, ShardStore(tmp_path / "shards"), banded)
    assert (nothing.reasoning, nothing.out_of_range) == (0, PROMPTS)  # bounds apply before dedup
    assert "40 reasoning rows were outside the teacher pass-rate bounds (0.7 to 1)" in nothing.note

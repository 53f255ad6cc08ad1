"""Decontamination that explains itself: templates (a task's fixed instruction) are not matches, and
the report and card say per task what was removed and by which n-grams."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from service.database import finishing, jobs, queue
from service.database.finishing import NewSample
from service.export.decontaminate import Decontaminator, heavy_removals
from service.export.mixing import export
from service.export.options import ExportOptions
from service.presets.procedural import procedural_prompts
from service.schemas import JobIn
from service.storage import shards
from service.storage.stores import ShardStore
from verifiers.base import NamedVerdict

INSTRUCTION = "Your task is to sort words in ascending or descending order using ASCII/Unicode ordering."


def test_an_ngram_in_most_of_a_tasks_prompts_is_a_template_and_no_match() -> None:
    evals = [f"{INSTRUCTION} Now sort these words: cobalt, ember, {w}" for w in ("zinc", "quartz")]
    decontaminator = Decontaminator(evals, n=8, template_share=0.5, template_min_rows=3)
    training = [f"{INSTRUCTION} Now sort these words: apple, {i}, pear" for i in range(4)]
    decontaminator.learn_templates(("word_sorting", t) for t in training)
    assert ("your", "task", "is", "to", "sort", "words", "in", "ascending") in decontaminator.templates
    assert not any(decontaminator.contaminated(t, "word_sorting") for t in training)
    assert decontaminator.contaminated(evals[0], "word_sorting")  # the problem itself still matches
    found = decontaminator.report()
    assert found["sources"]["word_sorting"]["rows"] == 5 and found["sources"]["word_sorting"]["removed"] == 1
    assert found["templates_ignored"] > 0


def test_templates_are_counted_per_task_and_need_enough_rows() -> None:
    """A task that is 10% of the mix still has its instruction found; three rows are too few to tell."""
    evals = [f"{INSTRUCTION} Now sort: x, y"]
    mixed = [("word_sorting", f"{INSTRUCTION} Now sort: a{i}, b") for i in range(10)]
    mixed += [("basic_arithmetic", f"Calculate {i} + {i}.") for i in range(90)]
    decontaminator = Decontaminator(evals, n=8, template_share=0.5, template_min_rows=10)
    decontaminator.learn_templates(mixed)
    assert decontaminator.templates
    few = Decontaminator(evals, n=8, template_share=0.5, template_min_rows=10)
    few.learn_templates(mixed[:3])
    assert not few.templates


def _procedural_job(engine: Engine, root: Path, count: int) -> str:
    prompts = list(procedural_prompts([f"word_sorting:{count}:1"], {}))
    job_id = jobs.create_job(
        engine,
        JobIn.model_validate(
            {"teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "t"}, "n": 1, "prompts": prompts}
        ),
    ).id
    for task in queue.claim(engine, "w", count, 30, max_attempts=3):
        verdict = (NamedVerdict("format", True, None, {}),)
        finishing.finish(
            engine, task, "w", [NewSample(0, "<think>s</think> a", "a", "stop", 3, verdict)], prompt_tokens=5
        )
    shards.flush_all(engine, ShardStore(root), shard_rows=50)
    return job_id


def test_an_eval_set_of_the_same_task_removes_only_the_prompt_they_share(
    engine: Engine, tmp_path: Path
) -> None:
    job_id = _procedural_job(engine, tmp_path / "shards", 30)
    shared = next(procedural_prompts(["word_sorting:1:1"], {}))["prompt"]  # training's first prompt
    # reasoning-gym seeds entry i with seed + i: seed 2 would repeat seed 1 shifted by one; 1000 shares none.
    # Without the rule that a match keeps 3 words outside the templates, 4 of these 200 would match.
    other_seed = [p["prompt"] for p in procedural_prompts(["word_sorting:200:1000"], {})]
    evals = tmp_path / "eval.jsonl"
    evals.write_text("".join(json.dumps({"question": q}) + "\n" for q in [*other_seed, shared]))
    out = tmp_path / "export"
    report = export(
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(jobs=(job_id,), output=out, reasoning_share=1.0, decontaminate=(evals,)),
    )
    assert (report.reasoning_contaminated, report.reasoning) == (1, 29)
    counted = report.contamination["sources"]["word_sorting"]
    assert (counted["rows"], counted["removed"]) == (30, 1) and counted["top_ngrams"]
    assert report.contamination["templates_ignored"] > 0
    card = (out / "README.md").read_text()
    assert "| word_sorting | 30 | 1 |" in card and "ignored as templates" in card
    assert heavy_removals(report.contamination, 0.5) == []

    bare = export(  # templates off: the open-r1 rule alone takes the whole task, and says so
        engine,
        ShardStore(tmp_path / "shards"),
        ExportOptions(
            jobs=(job_id,),
            output=tmp_path / "bare",
            reasoning_share=1.0,
            decontaminate=(evals,),
            template_share=1.0,
        ),
    )
    assert bare.reasoning_contaminated == 30
    (warning,) = heavy_removals(bare.contamination, 0.5)
    assert warning.startswith("decontamination removed 30 of 30 rows of word_sorting (100%)")
    assert "lower --template-share" in warning

"""Prompts by pass rate: a job's finished prompts read back, and the prompts another job takes from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.database import finishing, jobs, queue
from service.database.finishing import NewSample
from service.database.selection import difficulty_buckets, pass_rates, select_prompts
from service.difficulty import PromptsFromIn
from service.errors import InvalidJob
from service.schemas import JobIn
from service.storage import shards
from service.storage.stores import ShardStore
from verifiers.base import NamedVerdict

N = 4
ACCEPTED = [0, 1, 1, 2, 4, 3, 0, 4]  # accepted samples of prompt i, of N
TEACHER = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}


def _ended_job(engine: Engine, root: Path, *, role: str = "teacher") -> str:
    prompts = [
        {"id": f"p{i}", "prompt": f"Compute {i} + 1.", "reference": str(i + 1), "metadata": {"i": i}}
        for i in range(len(ACCEPTED))
    ]
    body = {"teacher": TEACHER, "role": role, "n": N}
    job_id = jobs.create_job(engine, JobIn.model_validate({**body, "prompts": prompts})).id
    for task in queue.claim(engine, "w", len(ACCEPTED), 30, max_attempts=3):
        accepted = ACCEPTED[int(task.prompt_id[1:])]
        samples = [
            NewSample(
                k, "<think>x</think> y", "y", "stop", 3, (NamedVerdict("math", k < accepted, None, {}),)
            )
            for k in range(N)
        ]
        finishing.finish(engine, task, "w", samples, prompt_tokens=1)
    shards.flush_all(engine, ShardStore(root), shard_rows=100)
    assert jobs.get_job(engine, job_id).status == "done"
    return job_id


def test_pass_rates_page_through_a_jobs_finished_prompts(engine: Engine, tmp_path: Path) -> None:
    job_id = _ended_job(engine, tmp_path)
    first = pass_rates(engine, job_id, limit=5)
    assert [item.prompt_id for item in first.items] == ["p0", "p1", "p2", "p3", "p4"]
    rest = pass_rates(engine, job_id, cursor=first.next_cursor, limit=5)
    assert [item.pass_rate for item in rest.items] == [0.75, 0.0, 1.0] and rest.next_cursor is None
    hard = pass_rates(engine, job_id, max_pass_rate=0.25)
    assert [(item.prompt_id, item.accepted) for item in hard.items] == [
        ("p0", 0),
        ("p1", 1),
        ("p2", 1),
        ("p6", 0),
    ]


def test_a_rule_selects_in_range_hardest_first_under_its_limit(engine: Engine, tmp_path: Path) -> None:
    job_id = _ended_job(engine, tmp_path, role="student")
    chosen = select_prompts(
        engine, PromptsFromIn(job=job_id, min_pass_rate=0.25, max_pass_rate=0.75, limit=3)
    )
    assert [p["id"] for p in chosen.prompts] == ["p1", "p2", "p3"]
    assert chosen.prompts[0] == {
        "id": "p1",
        "prompt": "Compute 1 + 1.",
        "reference": "2",
        "metadata": {"i": 1},
    }
    assert chosen.record["of"] == "student" and chosen.record["selected"] == 3
    easiest = select_prompts(engine, PromptsFromIn(job=job_id, order="easiest", limit=2))
    assert [p["id"] for p in easiest.prompts] == ["p4", "p7"]


def test_a_selection_becomes_the_jobs_tasks_and_its_record(engine: Engine, tmp_path: Path) -> None:
    source = _ended_job(engine, tmp_path)
    rule = {"job": source, "max_pass_rate": 0.0}
    job = JobIn.model_validate(
        {"teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}, "prompts_from": rule}
    )
    created = jobs.create_job(engine, job, selection=select_prompts(engine, job.prompts_from))  # type: ignore[arg-type]
    assert created.num_tasks == 2
    spec = jobs.get_job(engine, created.id).spec
    assert spec["prompts_from"] == {
        "job": source, "min_pass_rate": 0.0, "max_pass_rate": 0.0, "limit": None, "order": "hardest",
        "of": "teacher", "selected": 2,
    }  # fmt: skip
    claimed = queue.claim(engine, "w2", 10, 30, max_attempts=3)
    assert sorted(t.prompt_id for t in claimed) == ["p0", "p6"]


def test_an_empty_range_and_a_running_job_are_refused(engine: Engine, tmp_path: Path) -> None:
    source = _ended_job(engine, tmp_path)
    with pytest.raises(InvalidJob, match="no finished prompt") as empty:
        select_prompts(engine, PromptsFromIn(job=source, min_pass_rate=0.3, max_pass_rate=0.4))
    assert empty.value.field == "prompts_from"
    running = jobs.create_job(
        engine,
        JobIn.model_validate(
            {
                "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                "prompts": [{"id": "a", "prompt": "1"}],
            }
        ),
    ).id
    with pytest.raises(InvalidJob, match="is running") as busy:
        select_prompts(engine, PromptsFromIn(job=running))
    assert busy.value.field == "prompts_from.job"
    with pytest.raises(ValueError, match="max_pass_rate"):
        PromptsFromIn(job=source, min_pass_rate=0.5, max_pass_rate=0.2)


def test_difficulty_buckets_say_what_each_band_of_prompts_cost(engine: Engine, tmp_path: Path) -> None:
    job_id = _ended_job(engine, tmp_path)
    buckets = {b.up_to: b for b in difficulty_buckets(engine, job_id)}
    assert {bound: b.prompts for bound, b in buckets.items()} == {0.0: 2, 0.25: 2, 0.5: 1, 0.75: 1, 1.0: 2}
    assert buckets[0.0].accepted == 0 and buckets[0.0].tokens_per_accepted is None
    assert (buckets[1.0].samples, buckets[1.0].accepted, buckets[1.0].completion_tokens) == (8, 8, 24)
    assert buckets[1.0].tokens_per_accepted == 3.0 and buckets[0.25].above == 0.0

"""The adaptive budget: never overspent, spent on the prompts still unsolved, and a retried prompt's
reservation spent again rather than taken twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from service.api import browse
from service.database import budget, finishing, jobs, queue
from service.database.db import reading
from service.database.finishing import NewSample
from service.database.models import Job
from service.errors import InvalidJob, LeaseLost
from service.launch.procs import stop
from service.schemas import JobIn
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin, work_until_idle
from verifiers.base import NamedVerdict

PROMPTS = 30  # every third one hard
BUDGET = 75
CAP = 12


@pytest.fixture(scope="module")
def hard_teacher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Nine in ten samples right on an easy prompt, one in ten on a hard one (a number above 100)."""
    profile = ["--correct-share", "0.9", "--hard-above", "100", "--hard-correct-share", "0.1"]
    url, process = start_standin(tmp_path_factory.mktemp("hard"), *profile)
    yield url
    stop([process])


def _body(url: str, total: int = BUDGET, **more: object) -> dict[str, object]:
    prompts = []
    for i in range(PROMPTS):
        a, b = (101 + i, 7) if i % 3 == 0 else (i, 2)
        prompts.append({"id": f"p{i:02d}", "prompt": f"Compute {a} + {b}.", "reference": str(a + b)})
    return {
        "teacher": {"base_url": url, "model": DEFAULT_MODEL},
        "n": CAP,
        "sampling": {"seed": 9, "max_tokens": 300},
        "verifiers": [{"name": "format"}, {"name": "math"}],
        "adaptive_budget": {"total_samples": total, "first_round": 1},
        "prompts": prompts,
        **more,
    }


def _pool(engine: Engine, job_id: str) -> int | None:
    with reading(engine) as conn:
        return conn.execute(select(Job.extra_samples_left).where(Job.id == job_id)).scalar_one()


def test_the_budget_is_never_overspent_and_goes_to_the_unsolved(engine: Engine, hard_teacher: str) -> None:
    job_id = jobs.create_job(engine, JobIn.model_validate(_body(hard_teacher))).id
    assert _pool(engine, job_id) == BUDGET - PROMPTS
    work_until_idle(engine)
    samples = browse.list_samples(engine, job_id, limit=1000).items
    drawn = len(samples)
    assert PROMPTS < drawn <= BUDGET
    assert _pool(engine, job_id) == BUDGET - drawn  # every sample drawn was reserved, none leaked
    by_prompt: dict[str, list[bool]] = {}
    for sample in sorted(samples, key=lambda s: (s.prompt_id, s.sample_index)):
        by_prompt.setdefault(sample.prompt_id, []).append(sample.accepted)
    assert len(by_prompt) == PROMPTS  # every prompt had its first round
    for prompt_id, accepted in by_prompt.items():
        assert sum(accepted) <= 1 and (not any(accepted) or accepted[-1]), (prompt_id, accepted)
        assert len(accepted) <= CAP
    unsolved = [p for p, accepted in by_prompt.items() if not any(accepted)]
    assert _pool(engine, job_id) == 0 or all(len(by_prompt[p]) == CAP for p in unsolved)
    hard_rounds = [len(by_prompt[f"p{i:02d}"]) for i in range(0, PROMPTS, 3)]
    easy_rounds = [len(by_prompt[f"p{i:02d}"]) for i in range(PROMPTS) if i % 3]
    assert sum(hard_rounds) / len(hard_rounds) > 2 * sum(easy_rounds) / len(easy_rounds)


def test_a_retried_prompt_spends_its_reservation_again(engine: Engine) -> None:
    job_id = jobs.create_job(engine, JobIn.model_validate(_body("http://127.0.0.1:9/v1"))).id
    pool = BUDGET - PROMPTS
    task = queue.claim(engine, "w1", 1, 30, max_attempts=3)[0]
    assert budget.reserve(engine, task, "w1", 3, drawn=0) == 3
    queue.retry(engine, task, "w1", "a fault", delay_s=0, max_attempts=3)
    again = next(t for t in queue.claim(engine, "w2", PROMPTS, 30, max_attempts=3) if t.id == task.id)
    assert budget.reserve(engine, again, "w2", 2, drawn=0) == 2  # from its own reservation
    assert _pool(engine, job_id) == pool - 3
    assert budget.reserve(engine, again, "w2", 3, drawn=2) == 3  # one of its own, two more
    assert _pool(engine, job_id) == pool - 5
    samples = [
        NewSample(k, "<think>x</think> 1", "1", "stop", 2, (NamedVerdict("math", False, "m:x", {}),))
        for k in range(3)
    ]
    finishing.finish_many(engine, "w2", [finishing.Finished(again, samples, 1, extra_drawn=2)])
    assert _pool(engine, job_id) == pool - 2  # the three it reserved and did not draw came back
    with pytest.raises(LeaseLost):
        budget.reserve(engine, task, "w1", 1, drawn=0)  # the first attempt's lease is gone


def test_a_budget_short_of_one_first_round_per_prompt_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidJob, match="first round") as short:
        jobs.create_job(engine, JobIn.model_validate(_body("http://127.0.0.1:9/v1", total=PROMPTS - 1)))
    assert short.value.field == "adaptive_budget.total_samples"
    with pytest.raises(ValueError, match="first_round"):
        JobIn.model_validate(
            _body("http://127.0.0.1:9/v1", n=1) | {"adaptive_budget": {"total_samples": 90, "first_round": 2}}
        )

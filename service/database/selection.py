"""Prompts by difficulty: each finished prompt's pass rate in a job, and the prompts another job takes
from it by a range of pass rates (``prompts_from``).

A prompt's pass rate is its accepted samples over its samples, from its task's counts; only a prompt
that finished with samples has one. Selection reads only jobs that have ended, so that the same rule
on the same job always selects the same prompts; the rule and its outcome are stored with the new job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Float, Select, cast, select

from service.database.db import reading
from service.database.models import Job, Task
from service.difficulty import PromptsFromIn
from service.errors import InvalidJob, JobNotFound
from service.responses import DifficultyBucket, PassRateOut, PassRatePage
from service.schemas import PromptIn

ENDED = ("done", "cancelled")
PAGE_LIMIT = 1_000


@dataclass(frozen=True)
class Selection:
    """The prompts a rule chose, as the new job's prompts, and what is stored with it."""

    prompts: list[PromptIn]
    record: dict[str, Any]  # the rule, the source job's role and how many it chose


def _pass_rate() -> ColumnElement[Any]:
    return cast(Task.n_accepted, Float) / Task.n_samples


COUNTS = (Task.id, Task.prompt_id, Task.n_samples, Task.n_accepted)
PROMPT = (Task.prompt, Task.messages, Task.reference, Task.tests, Task.prompt_metadata)


def _rated(job_id: str, low: float, high: float, *columns: Any) -> Select[Any]:
    """The job's finished prompts whose pass rate is in [low, high] (compared in whole samples, so
    that 1 of 4 is exactly 0.25)."""
    columns = (Task.id, Task.prompt_id, Task.n_samples, Task.n_accepted)
    return select(
        *columns, Task.prompt, Task.messages, Task.reference, Task.tests, Task.prompt_metadata
    ).where(
        Task.job_id == job_id,
        Task.status == "done",
        Task.n_samples > 0,
        Task.n_accepted >= low * Task.n_samples,
        Task.n_accepted <= high * Task.n_samples,
    )


def select_prompts(engine: Engine, rule: PromptsFromIn) -> Selection:
    """The prompts of ``rule.job`` that the rule chooses, hardest or easiest first under its limit.

    Raises:
        InvalidJob: the job does not exist, has not ended, or has no prompt in the range.
    """
    field = "prompts_from.job"
    with reading(engine) as conn:
        source = conn.execute(select(Job.status, Job.spec).where(Job.id == rule.job)).first()
        if source is None:
            raise InvalidJob(f"{field}: no job with id {rule.job!r}", field=field)
        if source.status not in ENDED:
            raise InvalidJob(
                f"{field}: job {rule.job} is {source.status}; select from a job that has ended (done or "
                "cancelled), so that the selection holds",
                field=field,
            )
        rate = _pass_rate()
        order = rate.asc() if rule.order == "hardest" else rate.desc()
        query = _rated(rule.job, rule.min_pass_rate, rule.max_pass_rate, *PROMPT).order_by(order, Task.id)
        tasks = conn.execute(query.limit(rule.limit)).all()
    if not tasks:
        raise InvalidJob(
            f"prompts_from: no finished prompt of job {rule.job} has a pass rate from "
            f"{rule.min_pass_rate:g} to {rule.max_pass_rate:g}",
            field="prompts_from",
        )
    prompts: list[PromptIn] = []
    for task in tasks:
        prompt: dict[str, Any] = {"id": task.prompt_id}
        for key, value in (
            ("prompt", task.prompt),
            ("messages", task.messages),
            ("reference", task.reference),
            ("tests", task.tests),
            ("metadata", task.prompt_metadata),
        ):
            if value is not None:
                prompt[key] = value
        prompts.append(prompt)  # type: ignore[arg-type]
    record = {**rule.model_dump(), "of": source.spec.get("role", "teacher"), "selected": len(prompts)}
    return Selection(prompts, record)


def pass_rates(
    engine: Engine,
    job_id: str,
    *,
    min_pass_rate: float = 0.0,
    max_pass_rate: float = 1.0,
    cursor: int | None = None,
    limit: int = PAGE_LIMIT,
) -> PassRatePage:
    """A page of the job's finished prompts with their pass rates, in task order."""
    with reading(engine) as conn:
        if conn.execute(select(Job.id).where(Job.id == job_id)).first() is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        query = _rated(job_id, min_pass_rate, max_pass_rate).order_by(Task.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(Task.id > cursor)
        tasks = conn.execute(query).all()
    items = [
        PassRateOut(
            prompt_id=t.prompt_id,
            samples=t.n_samples,
            accepted=t.n_accepted,
            pass_rate=t.n_accepted / t.n_samples,
        )
        for t in tasks[:limit]
    ]
    return PassRatePage(items=items, next_cursor=tasks[limit - 1].id if len(tasks) > limit else None)


BUCKETS = (0.0, 0.25, 0.5, 0.75, 1.0)  # upper bounds: a bucket holds pass rates above the last bound


def difficulty_buckets(engine: Engine, job_id: str) -> list[DifficultyBucket]:
    """The job's finished prompts by pass rate bucket, with what each bucket cost: the samples and
    teacher tokens spent, and the tokens per accepted sample (where the budget went)."""
    with reading(engine) as conn:
        if conn.execute(select(Job.id).where(Job.id == job_id)).first() is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        rows = conn.execute(
            _rated(job_id, 0.0, 1.0).with_only_columns(
                Task.n_samples, Task.n_accepted, Task.completion_tokens
            )
        ).all()
    totals = {bound: [0, 0, 0, 0] for bound in BUCKETS}
    for samples, accepted, tokens in rows:
        bound = next(b for b in BUCKETS if accepted <= b * samples)
        for i, value in enumerate((1, samples, accepted, tokens)):
            totals[bound][i] += value
    low = [-1.0, *BUCKETS[:-1]]
    return [
        DifficultyBucket(
            above=None if floor < 0 else floor,
            up_to=bound,
            prompts=prompts,
            samples=samples,
            accepted=accepted,
            completion_tokens=tokens,
            tokens_per_accepted=tokens / accepted if accepted else None,
        )
        for floor, (bound, (prompts, samples, accepted, tokens)) in zip(low, totals.items(), strict=True)
    ]

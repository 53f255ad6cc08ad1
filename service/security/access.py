"""A token acts on its own jobs only (admin on any), within the operator's caps on what it may queue."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from service.database.db import reading
from service.database.models import Job
from service.errors import Forbidden, InvalidJob, JobNotFound
from service.security.limits import TooManyRequests
from service.security.tokens import Principal, Role

IN_FLIGHT = ("draft", "running", "paused")
ACTIVE_CAP_RETRY_S = 60


def require_owner(engine: Engine, job_id: str, principal: Principal) -> None:
    """Refuse (403) a token acting on a job another token created, unless it is an admin."""
    with reading(engine) as conn:
        row = conn.execute(select(Job.owner).where(Job.id == job_id)).first()
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    if row.owner != principal.name and not principal.may(Role.admin):
        raise Forbidden(
            f"job {job_id} belongs to token {row.owner or '(none)'!r}; token {principal.name!r} "
            "may only act on its own jobs (an admin token may act on any)"
        )


def check_new_job(
    engine: Engine, principal: Principal, prompts: int, *, max_active: int, max_prompts: int
) -> None:
    """Refuse a job past the prompts-per-job cap (422) or the jobs-in-flight cap (429)."""
    check_prompt_count(prompts, max_prompts)
    with reading(engine) as conn:
        active = conn.execute(
            select(func.count())
            .select_from(Job)
            .where(Job.owner == principal.name, Job.status.in_(IN_FLIGHT))
        ).scalar_one()
    if active >= max_active:
        raise TooManyRequests(
            f"token {principal.name!r} already has {active} jobs draft, running or paused "
            f"(TRACEMILL_MAX_ACTIVE_JOBS_PER_TOKEN is {max_active}); wait for one to end or cancel one",
            ACTIVE_CAP_RETRY_S,
        )


def check_prompt_count(prompts: int, max_prompts: int) -> None:
    if prompts > max_prompts:
        raise InvalidJob(
            f"prompts: a job may hold at most {max_prompts} prompts (TRACEMILL_MAX_PROMPTS_PER_JOB)",
            field="prompts",
        )


def prompts_after_adding(engine: Engine, job_id: str, adding: int) -> int:
    """How many prompts a draft would hold with ``adding`` more."""
    with reading(engine) as conn:
        held = conn.execute(select(Job.num_tasks).where(Job.id == job_id)).scalar_one_or_none()
    return (held or 0) + adding

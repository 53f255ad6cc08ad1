"""Jobs: create one with its tasks in one transaction, add prompt pages, start, cancel, report."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from service.database import budget, queue
from service.database.db import reading, utcnow, writing
from service.database.models import Job, Shard, Task
from service.database.queue import NewTask
from service.database.selection import Selection
from service.database.verdict_stats import rate, usage_by_model, verdict_stats
from service.errors import InvalidJob, JobNotFound, JobStateConflict
from service.responses import FailedTask, JobCreated, JobOut, JobSummary, SampleCounts, ShardOut, TaskCounts
from service.schemas import JobIn, PromptIn
from service.storage.stores import ShardStore

FAILED_TASKS_SHOWN = 20


def _insert_tasks(
    conn: Connection, job_id: str, spec: dict[str, Any], prompts: list[PromptIn], status: str
) -> None:
    repeated = [pid for pid, count in Counter(p["id"] for p in prompts).items() if count > 1]
    if repeated:
        raise InvalidJob(f"prompts: prompt id {repeated[0]!r} appears more than once", field="prompts")
    tasks = (
        NewTask(
            p["id"],
            p.get("prompt"),
            p.get("messages"),  # type: ignore[arg-type]
            p.get("reference"),
            p.get("tests"),
            p.get("metadata"),
        )
        for p in prompts
    )
    try:
        queue.enqueue(conn, job_id, tasks, status)
    except conn.dialect.loaded_dbapi.IntegrityError as exc:
        raise InvalidJob("prompts: a prompt id is already in this job", field="prompts") from exc
    conn.execute(update(Job).where(Job.id == job_id).values(num_tasks=Job.num_tasks + len(prompts)))


def create_job(
    engine: Engine, job: JobIn, owner: str | None = None, selection: Selection | None = None
) -> JobCreated:
    """Store the job and queue one task per prompt, all or nothing; ``owner`` names its token. With a
    ``selection`` (of ``job.prompts_from``), its prompts are the job's and its record is kept in the spec."""
    if job.idempotency_key:
        with reading(engine) as conn:
            existing = conn.execute(
                select(Job.id, Job.status, Job.num_tasks).where(Job.idempotency_key == job.idempotency_key)
            ).first()
        if existing:
            return JobCreated(
                id=existing.id, status=existing.status, num_tasks=existing.num_tasks, created=False
            )
    job_id = uuid.uuid4().hex
    now = utcnow()
    status = "running" if job.start else "draft"
    spec = job.spec()
    prompts = job.prompts
    if selection is not None:
        spec["prompts_from"], prompts = selection.record, selection.prompts
    with writing(engine) as conn:
        conn.execute(
            insert(Job).values(
                id=job_id,
                name=job.name,
                status=status,
                spec=spec,
                idempotency_key=job.idempotency_key,
                owner=owner,
                num_tasks=0,
                created_at=now,
                started_at=now if job.start else None,
            )
        )
        _insert_tasks(conn, job_id, spec, prompts, "queued" if job.start else "draft")
        if job.start:
            budget.set_aside(conn, job_id, spec, len(prompts))
    return JobCreated(id=job_id, status=status, num_tasks=len(prompts), created=True)


def job_row(conn: Connection, job_id: str) -> Any:
    row = conn.execute(select(Job).where(Job.id == job_id)).first()
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return row


def require_job(engine: Engine, job_id: str) -> None:
    """Raise JobNotFound unless the job exists (one primary-key lookup, no statistics)."""
    with reading(engine) as conn:
        job_row(conn, job_id)


def add_prompts(engine: Engine, job_id: str, prompts: list[PromptIn]) -> int:
    """Add a page of prompts to a draft job; returns the job's task count."""
    with writing(engine) as conn:
        job = job_row(conn, job_id)
        if job.status != "draft":
            raise JobStateConflict(f"job {job_id} is {job.status}; prompts can only be added to a draft")
        _insert_tasks(conn, job_id, job.spec, prompts, "draft")
        return int(conn.execute(select(Job.num_tasks).where(Job.id == job_id)).scalar_one())


def start_job(engine: Engine, job_id: str) -> None:
    """Queue a draft job's tasks."""
    with writing(engine) as conn:
        job = job_row(conn, job_id)
        if job.status != "draft":
            raise JobStateConflict(f"job {job_id} is {job.status}; only a draft can be started")
        if job.num_tasks == 0:
            raise InvalidJob("prompts: the job has no prompts yet", field="prompts")
        budget.set_aside(conn, job_id, job.spec, job.num_tasks)
        now = utcnow()
        conn.execute(
            update(Task)
            .where(Task.job_id == job_id, Task.status == "draft")
            .values(status="queued", not_before=now)
        )
        conn.execute(update(Job).where(Job.id == job_id).values(status="running", started_at=now))


def cancel_job(engine: Engine, job_id: str) -> None:
    """Stop new claims; tasks already running finish and what was accepted is kept."""
    with writing(engine) as conn:
        job = job_row(conn, job_id)
        if job.status in ("done", "cancelled"):
            raise JobStateConflict(f"job {job_id} is already {job.status}")
        conn.execute(
            update(Task)
            .where(Task.job_id == job_id, Task.status.in_(("draft", "queued", "paused")))
            .values(status="cancelled", finished_at=utcnow())
        )
        conn.execute(update(Job).where(Job.id == job_id).values(status="cancelled"))


def resume_job(engine: Engine, job_id: str) -> None:
    """Queue again what a paused or cancelled job left unfinished."""
    with writing(engine) as conn:
        job = job_row(conn, job_id)
        if job.status not in ("paused", "cancelled"):
            raise JobStateConflict(
                f"job {job_id} is {job.status}; only a paused or cancelled job can be resumed"
            )
        conn.execute(
            update(Task)
            .where(Task.job_id == job_id, Task.status.in_(("paused", "cancelled")))
            .values(status="queued", not_before=utcnow(), finished_at=None)
        )
        conn.execute(
            update(Job).where(Job.id == job_id).values(status="running", status_reason=None, finished_at=None)
        )


def paused_for_teacher(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    """Jobs paused because their teacher or a judge was unreachable (``"<role> unreachable…"``, the
    only reason a job pauses), with their specs (for workers to probe)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(Job.id, Job.spec).where(Job.status == "paused", Job.status_reason.like("% unreachable%"))
        ).all()
    return [(job_id, spec) for job_id, spec in rows]


@dataclass(frozen=True)
class TaskProgress:
    """A job's tasks by status, and the samples and tokens they hold."""

    tasks: TaskCounts
    samples: int
    accepted: int
    prompt_tokens: int
    completion_tokens: int


def task_progress(conn: Connection, job_ids: Sequence[str]) -> dict[str, TaskProgress]:
    """Each job's progress, from one grouped pass over its tasks (for one job or a page of them)."""
    if not job_ids:
        return {}
    rows = conn.execute(
        select(
            Task.job_id,
            Task.status,
            func.count(),
            func.sum(Task.n_samples),
            func.sum(Task.n_accepted),
            func.sum(Task.prompt_tokens),
            func.sum(Task.completion_tokens),
        )
        .where(Task.job_id.in_(job_ids))
        .group_by(Task.job_id, Task.status)
    ).all()
    tasks: dict[str, Counter[str]] = {job_id: Counter() for job_id in job_ids}
    sums: dict[str, list[int]] = {job_id: [0, 0, 0, 0] for job_id in job_ids}
    for job_id, task_status, count, *totals in rows:
        tasks[job_id][task_status] = count
        sums[job_id] = [a + int(b or 0) for a, b in zip(sums[job_id], totals, strict=True)]
    return {
        job_id: TaskProgress(TaskCounts(total=sum(tasks[job_id].values()), **tasks[job_id]), *sums[job_id])
        for job_id in job_ids
    }


def sample_counts(total: int, accepted: int) -> SampleCounts:
    return SampleCounts(
        total=total, accepted=accepted, rejected=total - accepted, acceptance_rate=rate(accepted, total)
    )


def get_job(engine: Engine, job_id: str) -> JobOut:
    """A job with its progress, acceptance per verifier and rejection reasons."""
    with reading(engine) as conn:
        job = job_row(conn, job_id)
        progress = task_progress(conn, [job_id])[job_id]
        stats, reasons = verdict_stats(conn, job_id, job.spec)
        usage = usage_by_model(conn, job_id, job.spec, progress.prompt_tokens, progress.completion_tokens)
        failed = conn.execute(
            select(Task.prompt_id, Task.attempt, Task.last_error)
            .where(Task.job_id == job_id, Task.status == "failed")
            .order_by(Task.id)
            .limit(FAILED_TASKS_SHOWN)
        ).all()
        shards = conn.execute(
            select(func.count()).select_from(Shard).where(Shard.job_id == job_id)
        ).scalar_one()
    return JobOut(
        id=job.id,
        name=job.name,
        owner=job.owner,
        status=job.status,
        status_reason=job.status_reason,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        spec=job.spec,
        tasks=progress.tasks,
        samples=sample_counts(progress.samples, progress.accepted),
        verifiers=stats,
        rejection_reasons=reasons,
        tokens={"prompt": progress.prompt_tokens, "completion": progress.completion_tokens},
        usage=usage,
        failed_tasks=[FailedTask(prompt_id=p, attempt=a, last_error=e) for p, a, e in failed],
        shards=int(shards),
    )


def list_jobs(engine: Engine, limit: int = 100) -> list[JobSummary]:
    """Jobs, newest first, with their progress, sample counts and tokens (one grouped query for all)."""
    with reading(engine) as conn:
        jobs = conn.execute(select(Job).order_by(Job.created_at.desc()).limit(limit)).all()
        progress = task_progress(conn, [j.id for j in jobs])
    return [
        JobSummary(
            id=j.id,
            name=j.name,
            owner=j.owner,
            status=j.status,
            status_reason=j.status_reason,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
            tasks=progress[j.id].tasks,
            samples=sample_counts(progress[j.id].samples, progress[j.id].accepted),
            tokens={"prompt": progress[j.id].prompt_tokens, "completion": progress[j.id].completion_tokens},
        )
        for j in jobs
    ]


def list_shards(engine: Engine, job_id: str, store: ShardStore) -> list[ShardOut]:
    """The job's shards as the database records them (never by globbing a folder)."""
    with reading(engine) as conn:
        job_row(conn, job_id)
        rows = conn.execute(select(Shard).where(Shard.job_id == job_id).order_by(Shard.id)).all()
    return [
        ShardOut(
            id=s.id,
            kind=s.kind,
            path=s.path,
            location=store.url(s.path),
            num_rows=s.num_rows,
            num_bytes=s.num_bytes,
        )
        for s in rows
    ]

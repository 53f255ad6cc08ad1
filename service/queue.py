"""Every task-queue statement: claim under a lease, renew, finish, retry, fail, release.

Writes that a worker makes for a task are fenced on (task, owner, attempt): a worker whose lease ran
out and was taken over matches no row, gets ``LeaseLost`` and writes nothing. A claim picks a batch of
queued tasks in one short write transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets many workers
claim at once without waiting on each other (SQLite ignores it and serialises writers instead).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, bindparam, insert, select, text, update

from service.db import is_sqlite, utcnow, writing
from service.errors import LeaseLost
from service.models import Job, Sample, Task, Verdict

ERROR_TEXT_LIMIT = 2_000
# Written as SQL text, not a bound parameter, so that SQLite can match the partial index on running
# tasks' leases (it uses a partial index only when the query's WHERE literally implies the index's).
IS_RUNNING = text("tasks.status = 'running'")
IS_QUEUED = text("tasks.status = 'queued'")


@dataclass(frozen=True)
class ClaimedTask:
    """What a worker needs to run one task; ``attempt`` fences its writes."""

    id: int
    job_id: str
    prompt_id: str
    prompt: str | None
    messages: list[dict[str, str]] | None
    reference: str | None
    tests: list[dict[str, Any]] | None
    attempt: int


class NewTask(NamedTuple):
    """A prompt about to be queued, as the user gave it: text or chat messages (a tuple: jobs bring
    100,000 of them)."""

    prompt_id: str
    prompt: str | None
    messages: list[dict[str, str]] | None
    reference: str | None
    tests: list[dict[str, Any]] | None


_TASK_COLUMNS = (
    "job_id",
    "prompt_id",
    "prompt",
    "messages",
    "reference",
    "tests",
    "status",
    "attempt",
    "not_before",
    "n_samples",
    "n_accepted",
    "prompt_tokens",
    "completion_tokens",
)


def enqueue(conn: Connection, job_id: str, tasks: Iterable[NewTask], status: str) -> None:
    """Insert a job's tasks in bulk: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

    Jobs of 100,000 prompts must be accepted in about a second, which SQLAlchemy's per-row parameter
    processing alone would exceed; values are encoded once here with the columns' own processors, so
    rows look exactly as SQLAlchemy would have written them.

    Raises:
        the driver's IntegrityError when a prompt id is already in the job.
    """
    now = utcnow()
    table = Task.__table__.c
    json_processor = table.messages.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    stamp = table.not_before.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    not_before = stamp(now) if stamp else now

    def encode_json(value: Any) -> Any:
        return json_processor(value) if json_processor else json.dumps(value)

    rows = (
        (
            job_id,
            t.prompt_id,
            t.prompt,
            None if t.messages is None else encode_json(t.messages),
            t.reference,
            None if t.tests is None else encode_json(t.tests),
            status,
            0,
            not_before,
            0,
            0,
            0,
            0,
        )
        for t in tasks
    )
    driver = conn.connection.driver_connection
    columns = ", ".join(_TASK_COLUMNS)
    if is_sqlite(conn):
        placeholders = ", ".join("?" * len(_TASK_COLUMNS))
        driver.executemany(f"INSERT INTO tasks ({columns}) VALUES ({placeholders})", rows)  # type: ignore[union-attr]
        return
    with driver.cursor() as cursor, cursor.copy(f"COPY tasks ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True)
class NewVerdict:
    verifier: str
    accepted: bool
    reason: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class NewSample:
    """A completion ready to commit; its key is (task, sample_index)."""

    sample_index: int
    completion: str
    think: str | None
    answer: str | None
    finish_reason: str | None
    completion_tokens: int
    verdicts: Sequence[NewVerdict] = field(default_factory=tuple)
    soft_labels: bytes | None = None  # packed; kept for accepted samples only

    @property
    def accepted(self) -> bool:
        return all(v.accepted for v in self.verdicts)

    @property
    def reason(self) -> str | None:
        return next((v.reason for v in self.verdicts if not v.accepted), None)


def _requeue_expired(conn: Connection, now: datetime, max_attempts: int) -> None:
    """Give back tasks whose worker stopped renewing; fail those out of attempts."""
    expired = (IS_RUNNING, Task.lease_expires_at < now)
    conn.execute(
        update(Task)
        .where(*expired, Task.attempt >= max_attempts)
        .values(
            status="failed",
            owner=None,
            lease_expires_at=None,
            finished_at=now,
            last_error=f"lease expired on attempt {max_attempts} of {max_attempts}",
        )
    )
    conn.execute(
        update(Task)
        .where(*expired, Task.attempt < max_attempts)
        .values(
            status="queued",
            owner=None,
            lease_expires_at=None,
            not_before=now,
            last_error="lease expired: the worker stopped renewing it",
        )
    )


def claim(
    engine: Engine, owner: str, limit: int, lease_seconds: float, max_attempts: int
) -> list[ClaimedTask]:
    """Lease up to ``limit`` queued tasks to ``owner``: ready soonest first, then oldest."""
    if limit <= 0:
        return []
    now = utcnow()
    with writing(engine) as conn:
        _requeue_expired(conn, now, max_attempts)
        ready = (
            select(Task.id)
            .where(IS_QUEUED, Task.not_before <= now)
            .order_by(Task.not_before, Task.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = conn.execute(
            update(Task)
            .where(Task.id.in_(ready.scalar_subquery()))
            .values(
                status="running",
                owner=owner,
                attempt=Task.attempt + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
            )
            .returning(
                Task.id,
                Task.job_id,
                Task.prompt_id,
                Task.prompt,
                Task.messages,
                Task.reference,
                Task.tests,
                Task.attempt,
            )
        ).all()
    return sorted((ClaimedTask(*row) for row in rows), key=lambda t: t.id)


def renew(engine: Engine, owner: str, lease_seconds: float) -> set[int]:
    """Extend every lease ``owner`` still holds; returns the ids of those tasks."""
    with writing(engine) as conn:
        rows = conn.execute(
            update(Task)
            .where(Task.owner == owner, IS_RUNNING)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .returning(Task.id)
        ).scalars()
        return set(rows)


def _move(conn: Connection, task: ClaimedTask, owner: str, **values: Any) -> None:
    """Update a task only while ``owner`` still holds this attempt's lease, and end the lease.

    Raises:
        LeaseLost: the lease was taken over or ended; nothing was written.
    """
    moved = conn.execute(
        update(Task)
        .where(
            Task.id == task.id, Task.owner == owner, Task.attempt == task.attempt, Task.status == "running"
        )
        .values(owner=None, lease_expires_at=None, **values)
    )
    if moved.rowcount != 1:
        raise _lease_lost(task, owner)


def _lease_lost(task: ClaimedTask, owner: str) -> LeaseLost:
    return LeaseLost(f"task {task.id} attempt {task.attempt} is no longer leased to {owner}")


@dataclass(frozen=True)
class Finished:
    """A task whose samples are ready to commit."""

    task: ClaimedTask
    samples: Sequence[NewSample]
    prompt_tokens: int


def finish(
    engine: Engine, task: ClaimedTask, owner: str, samples: Sequence[NewSample], prompt_tokens: int
) -> None:
    """Commit a task's samples and mark it done, in one transaction.

    Raises:
        LeaseLost: the lease is no longer ours; nothing was written.
    """
    (lost,) = finish_many(engine, owner, [Finished(task, samples, prompt_tokens)])
    if lost is not None:
        raise lost


# finish_many's statements, built once rather than on every call.
_HELD = (
    select(Task.id, Task.attempt)
    .where(Task.id.in_(bindparam("ids", expanding=True)), Task.owner == bindparam("owner"), IS_RUNNING)
    .with_for_update()
)
_DONE = (
    update(Task)
    .where(Task.id == bindparam("fenced_id"))
    .values(status="done", owner=None, lease_expires_at=None, finished_at=bindparam("now"), last_error=None)
)
_INSERT_SAMPLES = insert(Sample).returning(Sample.id, sort_by_parameter_order=True)
_INSERT_VERDICTS = insert(Verdict)


def finish_many(engine: Engine, owner: str, batch: Sequence[Finished]) -> list[LeaseLost | None]:
    """Commit several tasks' samples and mark them done, in one transaction (one commit, one fsync).

    Each task is fenced on its own: one whose lease was lost writes nothing and gets its
    ``LeaseLost`` back in its place in the list; the others commit.
    """
    now = utcnow()
    outcomes: list[LeaseLost | None] = []
    sample_rows: list[dict[str, Any]] = []
    verdicts: list[tuple[str, Sequence[NewVerdict]]] = []  # per sample row, in the same order
    with writing(engine) as conn:
        # The fence for the whole batch in one statement (rows locked on PostgreSQL; SQLite's write
        # transaction already excludes every other writer), then one pipelined update of those held.
        ids = [item.task.id for item in batch]
        held = {(task_id, attempt) for task_id, attempt in conn.execute(_HELD, {"ids": ids, "owner": owner})}
        done: list[dict[str, Any]] = []
        for item in batch:
            task, samples = item.task, item.samples
            if (task.id, task.attempt) not in held:
                outcomes.append(_lease_lost(task, owner))
                continue
            done.append(
                {
                    "fenced_id": task.id,
                    "n_samples": len(samples),
                    "n_accepted": sum(s.accepted for s in samples),
                    "prompt_tokens": item.prompt_tokens,
                    "completion_tokens": sum(s.completion_tokens for s in samples),
                }
            )
            outcomes.append(None)
            for s in samples:
                sample_rows.append(
                    {
                        "task_id": task.id,
                        "job_id": task.job_id,
                        "sample_index": s.sample_index,
                        "attempt": task.attempt,
                        "completion": s.completion,
                        "think": s.think,
                        "answer": s.answer,
                        "finish_reason": s.finish_reason,
                        "completion_tokens": s.completion_tokens,
                        "accepted": s.accepted,
                        "reason": s.reason,
                        "created_at": now,
                        "soft_labels": s.soft_labels if s.accepted else None,
                    }
                )
                verdicts.append((task.job_id, s.verdicts))
        if done:
            conn.execute(_DONE, [{**row, "now": now} for row in done])
        if not sample_rows:
            return outcomes
        sample_ids = conn.execute(_INSERT_SAMPLES, sample_rows).scalars().all()
        verdict_rows = [
            {
                "sample_id": sample_id,
                "job_id": job_id,
                "verifier": v.verifier,
                "accepted": v.accepted,
                "reason": v.reason,
                "details": v.details,
            }
            for sample_id, (job_id, sample_verdicts) in zip(sample_ids, verdicts, strict=True)
            for v in sample_verdicts
        ]
        if verdict_rows:
            conn.execute(_INSERT_VERDICTS, verdict_rows)
    return outcomes


def retry(
    engine: Engine, task: ClaimedTask, owner: str, error: str, *, delay_s: float, max_attempts: int
) -> str:
    """Put a task back after a retryable fault, or fail it when its attempts are spent.

    Returns:
        The task's new status, ``queued`` or ``failed``.
    """
    now = utcnow()
    error = error[:ERROR_TEXT_LIMIT]
    if task.attempt >= max_attempts:
        values: dict[str, Any] = {
            "status": "failed",
            "finished_at": now,
            "last_error": f"attempt {task.attempt} of {max_attempts}: {error}",
        }
    else:
        values = {"status": "queued", "not_before": now + timedelta(seconds=delay_s), "last_error": error}
    with writing(engine) as conn:
        _move(conn, task, owner, **values)
    return str(values["status"])


def fail(engine: Engine, task: ClaimedTask, owner: str, error: str) -> None:
    """Fail a task for good (the teacher rejected its request itself)."""
    with writing(engine) as conn:
        _move(conn, task, owner, status="failed", finished_at=utcnow(), last_error=error[:ERROR_TEXT_LIMIT])


def pause_for_teacher(engine: Engine, task: ClaimedTask, owner: str, reason: str) -> None:
    """Hold the task and its whole job because the teacher is unreachable; no attempt is spent.

    Raises:
        LeaseLost: the lease is no longer ours; nothing was written.
    """
    with writing(engine) as conn:
        _move(
            conn, task, owner, status="paused", attempt=task.attempt - 1, last_error=reason[:ERROR_TEXT_LIMIT]
        )
        conn.execute(
            update(Job)
            .where(Job.id == task.job_id, Job.status == "running")
            .values(status="paused", status_reason=reason[:ERROR_TEXT_LIMIT])
        )
        conn.execute(
            update(Task).where(Task.job_id == task.job_id, Task.status == "queued").values(status="paused")
        )


def release(engine: Engine, owner: str, task_ids: Sequence[int]) -> int:
    """Hand unfinished tasks back on a clean shutdown, without spending an attempt."""
    if not task_ids:
        return 0
    with writing(engine) as conn:
        return conn.execute(
            update(Task)
            .where(Task.id.in_(task_ids), Task.owner == owner, Task.status == "running")
            .values(
                status="queued",
                owner=None,
                lease_expires_at=None,
                attempt=Task.attempt - 1,
                not_before=utcnow(),
            )
        ).rowcount

"""The task queue: enqueue, claim under a lease, renew, retry, fail, release (finishing a task and
committing its samples: ``finishing.py``).

Writes that a worker makes for a task are fenced on (task, owner, attempt): a worker whose lease ran
out and was taken over matches no row, gets ``LeaseLost`` and writes nothing. A claim picks a batch of
queued tasks in one short write transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets many workers
claim at once without waiting on each other (SQLite ignores it and serialises writers instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select, text, update

from service.database.bulk import Encoders, driver_cursor, insert_rows, placeholder
from service.database.db import is_sqlite, reading, utcnow, writing
from service.database.models import Job, Task
from service.errors import LeaseLost
from verifiers.base import Tests

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
    tests: Tests | None
    attempt: int
    metadata: dict[str, Any] | None = None  # the prompt's own, for verifiers


class NewTask(NamedTuple):
    """A prompt about to be queued, as the user gave it: text or chat messages (a tuple: jobs bring
    100,000 of them)."""

    prompt_id: str
    prompt: str | None
    messages: list[dict[str, str]] | None
    reference: str | None
    tests: Tests | None
    metadata: dict[str, Any] | None = None


_TASK_COLUMNS = (
    "job_id",
    "prompt_id",
    "prompt",
    "messages",
    "reference",
    "tests",
    "prompt_metadata",
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
    encode = Encoders(conn)
    not_before = encode.timestamp(utcnow())
    rows = (
        (
            job_id,
            t.prompt_id,
            t.prompt,
            None if t.messages is None else encode.json(t.messages),
            t.reference,
            None if t.tests is None else encode.json(t.tests),
            None if t.metadata is None else encode.json(t.metadata),
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
    insert_rows(conn, "tasks", _TASK_COLUMNS, rows)


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
    engine: Engine,
    owner: str,
    limit: int,
    lease_seconds: float,
    max_attempts: int,
    *,
    sweep_expired: bool = True,
) -> list[ClaimedTask]:
    """Lease up to ``limit`` queued tasks to ``owner``: ready soonest first, then oldest.

    With ``sweep_expired`` (the default), expired leases are given back first; a worker claiming many
    times a second sweeps on only some of its claims (``workers/loop.py``).
    """
    if limit <= 0:
        return []
    now = utcnow()
    with writing(engine) as conn:
        if sweep_expired:
            _requeue_expired(conn, now, max_attempts)
        encode = Encoders(conn)
        expires = encode.timestamp(now + timedelta(seconds=lease_seconds))
        with driver_cursor(conn) as cursor:
            cursor.execute(_claim_sql(conn), (owner, expires, encode.timestamp(now), limit))
            rows = cursor.fetchall()
    claimed = (
        ClaimedTask(
            task_id,
            job,
            prompt_id,
            prompt,
            encode.load_json(chat),
            ref,
            encode.load_json(tests),
            n,
            encode.load_json(meta),
        )
        for task_id, job, prompt_id, prompt, chat, ref, tests, n, meta in rows
    )
    return sorted(claimed, key=lambda t: t.id)


def _claim_sql(conn: Connection) -> str:
    """The claim as the driver's SQL: a worker claims several times a second, and building the
    statement through SQLAlchemy each time cost it more CPU than the database spent running it."""
    mark = placeholder(conn)
    lock = "" if is_sqlite(conn) else " FOR UPDATE SKIP LOCKED"
    return (
        f"UPDATE tasks SET status = 'running', owner = {mark}, attempt = attempt + 1, "
        f"lease_expires_at = {mark} WHERE id IN (SELECT id FROM tasks WHERE {IS_QUEUED.text} "
        f"AND not_before <= {mark} ORDER BY not_before, id LIMIT {mark}{lock}) "
        "RETURNING id, job_id, prompt_id, prompt, messages, reference, tests, attempt, prompt_metadata"
    )


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
        raise lease_lost(task, owner)


def lease_lost(task: ClaimedTask, owner: str) -> LeaseLost:
    return LeaseLost(f"task {task.id} attempt {task.attempt} is no longer leased to {owner}")


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


def outstanding(engine: Engine) -> int:
    """Tasks still to run anywhere: queued (a retry's backoff included) or leased to some worker, on
    this host or another. A worker told to exit when idle waits for these, so that a host that dies
    holding leases has its tasks picked up when they expire, not left for no one."""
    with reading(engine) as conn:
        count = conn.execute(
            select(func.count()).select_from(Task).where(Task.status.in_(("queued", "running")))
        ).scalar_one()
    return int(count)

"""Every task-queue statement: claim under a lease, renew, finish, retry, fail, release.

Writes that a worker makes for a task are fenced on (task, owner, attempt): a worker whose lease ran
out and was taken over matches no row, gets ``LeaseLost`` and writes nothing. A claim picks a batch of
queued tasks in one short write transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets many workers
claim at once without waiting on each other (SQLite ignores it and serialises writers instead).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, text, update
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from service.database.db import is_sqlite, utcnow, writing
from service.database.models import Job, Task, metadata
from service.errors import LeaseLost
from verifiers.base import NamedVerdict, Tests

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


class _Encoders:
    """Values as SQLAlchemy's column types would bind and load them, for statements sent to the driver
    itself."""

    def __init__(self, conn: Connection) -> None:
        columns = Task.__table__.c
        json_type = columns.messages.type.dialect_impl(conn.dialect)
        self._json = json_type.bind_processor(conn.dialect)
        self._load_json = json_type.result_processor(conn.dialect, None)  # None: the driver decodes
        self._stamp = columns.not_before.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)

    def json(self, value: Any) -> Any:
        return self._json(value) if self._json else json.dumps(value)

    def load_json(self, value: Any) -> Any:
        return self._load_json(value) if self._load_json else value

    def timestamp(self, value: datetime) -> Any:
        return self._stamp(value) if self._stamp else value


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the driver itself, inside the connection's transaction."""
    with closing(conn.connection.driver_connection.cursor()) as cursor:  # type: ignore[union-attr]
        yield cursor


def _mark(conn: Connection) -> str:
    """The driver's placeholder: sqlite3 ``?``, psycopg ``%s``."""
    return "?" if is_sqlite(conn) else "%s"


def _marks(conn: Connection, columns: Sequence[str]) -> str:
    return ", ".join(_mark(conn) for _ in columns)


def _insert_sql(conn: Connection, table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(conn, columns)})"


def enqueue(conn: Connection, job_id: str, tasks: Iterable[NewTask], status: str) -> None:
    """Insert a job's tasks in bulk: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

    Jobs of 100,000 prompts must be accepted in about a second, which SQLAlchemy's per-row parameter
    processing alone would exceed; values are encoded once here with the columns' own processors, so
    rows look exactly as SQLAlchemy would have written them.

    Raises:
        the driver's IntegrityError when a prompt id is already in the job.
    """
    encode = _Encoders(conn)
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
    _insert_rows(conn, "tasks", _TASK_COLUMNS, rows)


@dataclass(frozen=True)
class NewSample:
    """A completion ready to commit; its key is (task, sample_index)."""

    sample_index: int
    completion: str  # its think part is read from it again where shown (workers/reasoning.split_text)
    answer: str | None
    finish_reason: str | None
    completion_tokens: int
    verdicts: Sequence[NamedVerdict] = field(default_factory=tuple)
    soft_labels: bytes | None = None  # packed; kept for accepted samples only

    @property
    def accepted(self) -> bool:
        return all(v.accepted for v in self.verdicts if v.counts)

    @property
    def reason(self) -> str | None:
        return next((v.reason for v in self.verdicts if not v.accepted and v.counts), None)


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
        encode = _Encoders(conn)
        expires = encode.timestamp(now + timedelta(seconds=lease_seconds))
        with _cursor(conn) as cursor:
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
    mark = _mark(conn)
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


# finish_many's statements go to the driver as they are, a tuple per row: SQLAlchemy's statement
# building and per-row parameter processing cost more CPU than the database's own work for a batch.
_DONE_SET = ("finished_at", "n_samples", "n_accepted", "prompt_tokens", "completion_tokens")
_SAMPLE_COLUMNS = (
    "task_id",
    "job_id",
    "sample_index",
    "attempt",
    "completion",
    "answer",
    "finish_reason",
    "completion_tokens",
    "accepted",
    "reason",
    "created_at",
    "soft_labels",
)
_NEXT_SAMPLE_IDS = "SELECT nextval(pg_get_serial_sequence('samples', 'id')) FROM generate_series(1, %s)"
_VERDICT_COLUMNS = ("sample_id", "verifier", "accepted", "reason", "details")
_BACKLOG_COLUMNS = ("job_id", "accepted", "sample_id", "created_at")
_COUNT_KEY = ("job_id", "verifier", "accepted", "reason")


def _held_sql(conn: Connection, count: int) -> str:
    """The fence of a batch: which of ``count`` tasks are still leased to the owner, at which attempt
    (locked on PostgreSQL; SQLite's write transaction already excludes every other writer)."""
    lock = "" if is_sqlite(conn) else " FOR UPDATE"
    return (
        f"SELECT id, attempt FROM tasks WHERE id IN ({', '.join([_mark(conn)] * count)}) "
        f"AND owner = {_mark(conn)} AND {IS_RUNNING.text}{lock}"
    )


def _done_sql(conn: Connection) -> str:
    mark = _mark(conn)
    assignments = ", ".join(f"{column} = {mark}" for column in _DONE_SET)
    return (
        "UPDATE tasks SET status = 'done', owner = NULL, lease_expires_at = NULL, last_error = NULL, "
        f"{assignments} WHERE id = {mark}"
    )


def _add_sql(conn: Connection, table: str, key: tuple[str, ...], values: tuple[str, ...]) -> str:
    """Insert a row, or add its ``values`` to the row with its ``key`` (the same ``ON CONFLICT``
    upsert on both databases): a job's verdict counts and verifier costs."""
    insert = _insert_sql(conn, table, (*key, *values))
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in values)
    return f"{insert} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {added}"


_COST_KEY = ("job_id", "verifier", "model")
_COST_VALUES = ("verdicts", "seconds", "prompt_tokens", "completion_tokens")


def _add_costs(conn: Connection, per_sample: Iterable[tuple[str, bool, Sequence[NamedVerdict]]]) -> None:
    """Add a batch's verifier time and model tokens to their jobs' costs, in key order (as the counts)."""
    costs: dict[tuple[str, str, str], list[float]] = {}
    for job_id, _, verdicts in per_sample:
        for v in verdicts:
            found = v.details.get("usage")
            usage: dict[str, Any] = found if isinstance(found, dict) else {}
            model = str(v.details.get("model", "")) if usage else ""
            cost = costs.setdefault((job_id, v.verifier, model), [0, 0.0, 0, 0])
            cost[0] += 1
            cost[1] += v.seconds
            cost[2] += int(usage.get("prompt_tokens", 0))
            cost[3] += int(usage.get("completion_tokens", 0))
    if costs:
        with _cursor(conn) as cursor:
            cursor.executemany(
                _add_sql(conn, "verifier_costs", _COST_KEY, _COST_VALUES),
                [(*key, *cost) for key, cost in sorted(costs.items())],
            )


def _count_verdicts(conn: Connection, per_sample: Iterable[tuple[str, bool, Sequence[NamedVerdict]]]) -> None:
    """Add a batch's verdicts to their jobs' counts, one row per key, in key order: on
    PostgreSQL a count row stays locked until the batch commits, and workers that lock the rows they
    share in the same order wait for each other but never deadlock. Last in the transaction, so that
    the lock is held for its commit alone."""
    counts = Counter(
        (job_id, v.verifier, v.accepted, v.reason or "")
        for job_id, _, verdicts in per_sample
        for v in verdicts
    )
    if counts:
        with _cursor(conn) as cursor:
            cursor.executemany(
                _add_sql(conn, "verdict_counts", _COUNT_KEY, ("samples",)),
                [(*key, n) for key, n in sorted(counts.items())],
            )


def _insert_samples(conn: Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert sample rows; their new ids, in order.

    On PostgreSQL the ids are drawn from the table's sequence first and the rows go in by ``COPY``:
    psycopg's pipelined ``executemany`` spends some 50 µs of Python per row, ``COPY`` a few.
    """
    with _cursor(conn) as cursor:
        if is_sqlite(conn):  # sqlite3's executemany returns no rows; one execute each is as cheap
            statement = _insert_sql(conn, "samples", _SAMPLE_COLUMNS)
            ids = []
            for row in rows:
                cursor.execute(statement, row)
                ids.append(cursor.lastrowid)
            return ids
        cursor.execute(_NEXT_SAMPLE_IDS, (len(rows),))
        ids = [sample_id for (sample_id,) in cursor.fetchall()]
        with_ids = ((i, *row) for i, row in zip(ids, rows, strict=True))
        _copy(cursor, "samples", ("id", *_SAMPLE_COLUMNS), with_ids)
        return ids


# The type psycopg encodes each column type as in a binary ``COPY`` (the bytes must be the server's own
# binary form of the column's type); the rest, text and varchar, goes as UTF-8.
_BINARY_FORMS = {
    "BIGINT": "int8",
    "INTEGER": "int4",
    "BOOLEAN": "bool",
    "TIMESTAMP": "timestamp",
    "BYTEA": "bytea",
    "JSON": "json",  # values arrive wrapped by the column's own bind processor (psycopg's Json)
}


@cache
def _binary_types(table: str, columns: tuple[str, ...]) -> list[str]:
    """The types psycopg must encode a table's columns as for a binary ``COPY``, from the models."""
    dialect = PGDialect_psycopg()  # type: ignore[no-untyped-call]
    names = [metadata.tables[table].c[c].type.compile(dialect=dialect).split()[0] for c in columns]
    return [_BINARY_FORMS.get(name, "text") for name in names]


def _copy(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """Rows into a PostgreSQL table by ``COPY``, the cheapest way in for many rows. In the binary
    format: the server then reads long text as it is, where the text format has it scan every
    character for escapes (for 8 kB completions, 0.01 ms of the server's CPU a row against 0.03 to
    0.04, and less of the worker's too)."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_binary_types(table, tuple(columns)))
        for row in rows:
            copy.write_row(row)


def _insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Many rows in one go: ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""
    with _cursor(conn) as cursor:
        if is_sqlite(conn):
            cursor.executemany(_insert_sql(conn, table, columns), rows)
        else:
            _copy(cursor, table, columns, rows)


def finish_many(engine: Engine, owner: str, batch: Sequence[Finished]) -> list[LeaseLost | None]:
    """Commit several tasks' samples and mark them done, in one transaction (one commit, one fsync).

    Each task is fenced on its own: one whose lease was lost writes nothing and gets its
    ``LeaseLost`` back in its place in the list; the others commit.
    """
    outcomes: list[LeaseLost | None] = []
    with writing(engine) as conn:
        encode = _Encoders(conn)
        now = encode.timestamp(utcnow())
        # The fence for the whole batch in one statement, then one update of those held.
        ids = [item.task.id for item in batch]
        with _cursor(conn) as cursor:
            cursor.execute(_held_sql(conn, len(ids)), (*ids, owner))
            held = {(task_id, attempt) for task_id, attempt in cursor.fetchall()}
        done: list[tuple[Any, ...]] = []
        samples: list[tuple[Any, ...]] = []
        # Per sample row, in the same order: its job, whether it was accepted, its verdicts.
        per_sample: list[tuple[str, bool, Sequence[NamedVerdict]]] = []
        for item in batch:
            task = item.task
            if (task.id, task.attempt) not in held:
                outcomes.append(_lease_lost(task, owner))
                continue
            outcomes.append(None)
            accepted = [s.accepted for s in item.samples]
            done.append(
                (
                    now,
                    len(item.samples),
                    sum(accepted),
                    item.prompt_tokens,
                    sum(s.completion_tokens for s in item.samples),
                    task.id,
                )
            )
            for s, ok in zip(item.samples, accepted, strict=True):
                samples.append(
                    (
                        task.id,
                        task.job_id,
                        s.sample_index,
                        task.attempt,
                        s.completion,
                        s.answer,
                        s.finish_reason,
                        s.completion_tokens,
                        ok,
                        s.reason,
                        now,
                        s.soft_labels if ok else None,
                    )
                )
                per_sample.append((task.job_id, ok, s.verdicts))
        if done:
            with _cursor(conn) as cursor:
                cursor.executemany(_done_sql(conn), done)
        if not samples:
            return outcomes
        sample_ids = _insert_samples(conn, samples)
        verdict_rows = [
            (sample_id, v.verifier, v.accepted, v.reason, encode.json(v.details))
            for sample_id, (_, _, sample_verdicts) in zip(sample_ids, per_sample, strict=True)
            for v in sample_verdicts
        ]
        if verdict_rows:
            _insert_rows(conn, "verdicts", _VERDICT_COLUMNS, verdict_rows)
        backlog = [
            (job_id, ok, sample_id, now)
            for sample_id, (job_id, ok, _) in zip(sample_ids, per_sample, strict=True)
        ]
        _insert_rows(conn, "shard_backlog", _BACKLOG_COLUMNS, backlog)  # each sample awaits its shard
        _count_verdicts(conn, per_sample)
        _add_costs(conn, per_sample)
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

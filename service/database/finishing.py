"""Finishing tasks: a batch's samples, verdicts, counts and costs committed in one transaction, each
task fenced on its lease.

A task's writes match (task, owner, attempt): one whose lease was lost and taken over writes nothing and
gets ``LeaseLost`` back; the others in the batch commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from service.database.bulk import Encoders, copy_rows, driver_cursor, insert_rows, insert_sql, placeholder
from service.database.db import is_sqlite, utcnow, writing
from service.database.queue import IS_RUNNING, ClaimedTask, lease_lost
from service.errors import LeaseLost
from verifiers.base import NamedVerdict


@dataclass(frozen=True)
class NewSample:
    """A completion ready to commit; its key is (task, sample_index)."""

    sample_index: int
    completion: str  # its think part is read from it again where shown (service/reasoning.py, split_text)
    answer: str | None
    finish_reason: str | None
    completion_tokens: int
    verdicts: Sequence[NamedVerdict] = field(default_factory=tuple)
    soft_labels: bytes | None = None  # packed; kept for accepted samples only
    entropy: float | None = None  # the teacher's mean token entropy, where soft labels were asked for

    @property
    def accepted(self) -> bool:
        return all(v.accepted for v in self.verdicts if v.counts)

    @property
    def reason(self) -> str | None:
        return next((v.reason for v in self.verdicts if not v.accepted and v.counts), None)


@dataclass(frozen=True)
class Finished:
    """A task whose samples are ready to commit."""

    task: ClaimedTask
    samples: Sequence[NewSample]
    prompt_tokens: int
    extra_drawn: int | None = None  # adaptive budget: samples drawn beyond the first round


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
    "entropy",
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
        f"SELECT id, attempt FROM tasks WHERE id IN ({', '.join([placeholder(conn)] * count)}) "
        f"AND owner = {placeholder(conn)} AND {IS_RUNNING.text}{lock}"
    )


def _done_sql(conn: Connection) -> str:
    mark = placeholder(conn)
    assignments = ", ".join(f"{column} = {mark}" for column in _DONE_SET)
    return (
        "UPDATE tasks SET status = 'done', owner = NULL, lease_expires_at = NULL, last_error = NULL, "
        f"{assignments} WHERE id = {mark}"
    )


def _add_sql(conn: Connection, table: str, key: tuple[str, ...], values: tuple[str, ...]) -> str:
    """Insert a row, or add its ``values`` to the row with its ``key`` (the same ``ON CONFLICT``
    upsert on both databases): a job's verdict counts and verifier costs."""
    insert = insert_sql(conn, table, (*key, *values))
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
        with driver_cursor(conn) as cursor:
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
        with driver_cursor(conn) as cursor:
            cursor.executemany(
                _add_sql(conn, "verdict_counts", _COUNT_KEY, ("samples",)),
                [(*key, n) for key, n in sorted(counts.items())],
            )


def _insert_samples(conn: Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert sample rows; their new ids, in order.

    On PostgreSQL the ids are drawn from the table's sequence first and the rows go in by ``COPY``:
    psycopg's pipelined ``executemany`` spends some 50 µs of Python per row, ``COPY`` a few.
    """
    with driver_cursor(conn) as cursor:
        if is_sqlite(conn):  # sqlite3's executemany returns no rows; one execute each is as cheap
            statement = insert_sql(conn, "samples", _SAMPLE_COLUMNS)
            ids = []
            for row in rows:
                cursor.execute(statement, row)
                ids.append(cursor.lastrowid)
            return ids
        cursor.execute(_NEXT_SAMPLE_IDS, (len(rows),))
        ids = [sample_id for (sample_id,) in cursor.fetchall()]
        with_ids = ((i, *row) for i, row in zip(ids, rows, strict=True))
        copy_rows(cursor, "samples", ("id", *_SAMPLE_COLUMNS), with_ids)
        return ids


def _return_budget(conn: Connection, finished: Sequence[Finished]) -> None:
    """Give back to each adaptive job's pool what its finished prompts reserved and did not draw."""
    drawn = [
        (item.extra_drawn, item.task.id, item.task.job_id)
        for item in finished
        if item.extra_drawn is not None
    ]
    if not drawn:
        return
    mark = placeholder(conn)
    with driver_cursor(conn) as cursor:
        cursor.executemany(
            "UPDATE jobs SET extra_samples_left = extra_samples_left + COALESCE((SELECT extra_reserved FROM "
            f"tasks WHERE id = {mark}), 0) - {mark} WHERE id = {mark}",
            [(task_id, used, job_id) for used, task_id, job_id in drawn],
        )
        cursor.executemany(
            f"UPDATE tasks SET extra_reserved = {mark} WHERE id = {mark}",
            [(used, task_id) for used, task_id, _ in drawn],
        )


def finish_many(engine: Engine, owner: str, batch: Sequence[Finished]) -> list[LeaseLost | None]:
    """Commit several tasks' samples and mark them done, in one transaction (one commit, one fsync).

    Each task is fenced on its own: one whose lease was lost writes nothing and gets its
    ``LeaseLost`` back in its place in the list; the others commit.
    """
    outcomes: list[LeaseLost | None] = []
    with writing(engine) as conn:
        encode = Encoders(conn)
        now = encode.timestamp(utcnow())
        # The fence for the whole batch in one statement, then one update of those held.
        ids = [item.task.id for item in batch]
        with driver_cursor(conn) as cursor:
            cursor.execute(_held_sql(conn, len(ids)), (*ids, owner))
            held = {(task_id, attempt) for task_id, attempt in cursor.fetchall()}
        done: list[tuple[Any, ...]] = []
        samples: list[tuple[Any, ...]] = []
        # Per sample row, in the same order: its job, whether it was accepted, its verdicts.
        per_sample: list[tuple[str, bool, Sequence[NamedVerdict]]] = []
        for item in batch:
            task = item.task
            if (task.id, task.attempt) not in held:
                outcomes.append(lease_lost(task, owner))
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
                        s.entropy,
                    )
                )
                per_sample.append((task.job_id, ok, s.verdicts))
        if done:
            with driver_cursor(conn) as cursor:
                cursor.executemany(_done_sql(conn), done)
        _return_budget(conn, [item for item in batch if (item.task.id, item.task.attempt) in held])
        if not samples:
            return outcomes
        sample_ids = _insert_samples(conn, samples)
        verdict_rows = [
            (sample_id, v.verifier, v.accepted, v.reason, encode.json(v.details))
            for sample_id, (_, _, sample_verdicts) in zip(sample_ids, per_sample, strict=True)
            for v in sample_verdicts
        ]
        if verdict_rows:
            insert_rows(conn, "verdicts", _VERDICT_COLUMNS, verdict_rows)
        backlog = [
            (job_id, ok, sample_id, now)
            for sample_id, (job_id, ok, _) in zip(sample_ids, per_sample, strict=True)
        ]
        insert_rows(conn, "shard_backlog", _BACKLOG_COLUMNS, backlog)  # each sample awaits its shard
        _count_verdicts(conn, per_sample)
        _add_costs(conn, per_sample)
    return outcomes

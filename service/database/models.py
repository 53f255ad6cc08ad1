"""Tables: jobs, tasks (one per prompt), samples (one per completion), verdicts and their counts and
costs per job, shards, the samples awaiting a shard, exports, and the workers' heartbeats.

The schema is created by Alembic only (``migrations/``); ``tests/test_migrations.py`` checks that the
migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Job(Base):
    """A generation job: its settings in ``spec``, its prompts as tasks."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # draft | running | paused | cancelled | done
    status_reason: Mapped[str | None] = mapped_column(Text)  # why it is paused
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    owner: Mapped[str | None] = mapped_column(String(64))  # the name of the token that created it
    num_tasks: Mapped[int] = mapped_column(Integer, default=0)
    # An adaptive budget's samples not yet reserved by any prompt beyond its first round (null: none).
    extra_samples_left: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Task(Base):
    """One prompt of a job; the unit a worker claims under a lease."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "prompt_id"),
        # Few, partial indexes, since a 100,000-prompt job inserts its tasks at once: claims read queued
        # tasks by not_before, lease sweeps read running tasks by expiry, per-job counts use the unique
        # key. Queries name the status as SQL text (queue.IS_QUEUED, IS_RUNNING) so SQLite matches them.
        Index(
            "ix_tasks_queued",
            "not_before",
            "id",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_tasks_running_lease",
            "lease_expires_at",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    prompt_id: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str | None] = mapped_column(Text)  # a text prompt, as given
    messages: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)  # a chat prompt, as given
    reference: Mapped[str | None] = mapped_column(Text)
    tests: Mapped[Any] = mapped_column(JSON, nullable=True)  # as the prompt gave them: list, object or text
    prompt_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the prompt's ``metadata``
    # draft | queued | running | paused (its job is) | done | failed | cancelled
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    not_before: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    n_samples: Mapped[int] = mapped_column(Integer, default=0)
    n_accepted: Mapped[int] = mapped_column(Integer, default=0)
    # Samples this prompt reserved from its job's adaptive budget beyond its first round, by any attempt.
    extra_reserved: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Shard(Base):
    """A Parquet file that counts: a shard exists only once this row is committed."""

    __tablename__ = "shards"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # accepted | rejected | softlabels
    path: Mapped[str] = mapped_column(String(500), unique=True)  # relative to the shard root
    num_rows: Mapped[int] = mapped_column(Integer)
    num_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Sample(Base):
    """One completion of a task, keyed by (task, sample index) so a retry cannot double it."""

    __tablename__ = "samples"
    __table_args__ = (
        UniqueConstraint("task_id", "sample_index"),
        Index(None, "job_id", "accepted", "id"),
        Index(None, "job_id", "id"),  # the samples list: a job's samples in id order
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(String(32))  # its task's job; no key of its own (migration 0011)
    sample_index: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    completion: Mapped[str] = mapped_column(Text)  # its think part is read from it (migration 0010)
    answer: Mapped[str | None] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    completion_tokens: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(120))  # the first rejection, for quick display
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # The teacher's mean token entropy over its top-k log-probabilities, where soft labels were asked for.
    entropy: Mapped[float | None] = mapped_column(Float)
    # An accepted sample's soft labels (packed by service/storage/soft_labels.py) until its shard is written.
    soft_labels: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class ShardBacklog(Base):
    """A committed sample not yet in a shard: the flusher's work list. Written in the transaction that
    commits the sample, deleted in the one that records its shard.

    A row of its own rather than a mark on the sample (migration 0009): marking a sample rewrote its
    whole row, text included, on SQLite, and added an entry to every index of the samples table on
    PostgreSQL. Keyed the way the flusher reads it: a job's samples of one kind, in id order.
    """

    __tablename__ = "shard_backlog"
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    accepted: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    sample_id: Mapped[int] = mapped_column(
        Id, ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Verdict(Base):
    """What one verifier said of one sample; every verifier that ran leaves one."""

    __tablename__ = "verdicts"

    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    verifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(120))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class VerdictCount(Base):
    """How many of a job's samples a verifier accepted, or rejected, with a reason (``""`` where the
    verdict gave none). Added to by the transaction that commits the verdicts (migration 0012), so a
    job's acceptance per verifier and its rejection reasons are read from a few rows, not counted over
    all its verdicts on every status request. The job's key is checked only when a row is first
    inserted; later commits update its count."""

    __tablename__ = "verdict_counts"
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    verifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    accepted: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    reason: Mapped[str] = mapped_column(String(120), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)


class VerifierCost(Base):
    """What a job's verdicts of one verifier cost: their number, the seconds they took and, for a
    verifier that asks a model (``model`` is ``""`` otherwise), that model's tokens. Added to by the
    transaction that commits the verdicts (migration 0014)."""

    __tablename__ = "verifier_costs"
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    verifier: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    verdicts: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)


class Export(Base):
    """An export requested over the API and run in the background; its progress and outcome."""

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    location: Mapped[str] = mapped_column(String(1000))
    rows_written: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class WorkerHost(Base):
    """A worker process as it last said it was: where it runs, what it has, when it last beat."""

    __tablename__ = "workers"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)  # as its leases name it
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer)  # the GPUs visible to it (CUDA_VISIBLE_DEVICES or nvidia-smi)
    teachers: Mapped[list[str]] = mapped_column(JSON)  # the teacher servers it has sent requests to
    in_flight: Mapped[int] = mapped_column(Integer)  # tasks it held at its last beat
    beat_s: Mapped[float] = mapped_column(Float)  # how often it beats: it is live while beats keep coming
    started_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)  # a clean stop; a killed one just ages


metadata = Base.metadata

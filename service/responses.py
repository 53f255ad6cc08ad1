"""What the API answers: jobs with their counts, samples with their verdicts, shards. Built by the
database room's readers, returned by the routes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class JobCreated(BaseModel):
    id: str
    status: str
    num_tasks: int
    created: bool = Field(description="False when an equal idempotency key returned an existing job.")


class TaskCounts(BaseModel):
    total: int = 0
    draft: int = 0
    queued: int = 0
    running: int = 0
    paused: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0


class SampleCounts(BaseModel):
    total: int
    accepted: int
    rejected: int
    acceptance_rate: float | None


class VerifierStats(BaseModel):
    name: str
    accepted: int
    rejected: int
    acceptance_rate: float | None
    seconds: float = Field(default=0.0, description="Time its verdicts took, summed over samples.")
    tokens: int = Field(default=0, description="Tokens of the model it asks (a judge), prompt and reply.")


class ModelUsage(BaseModel):
    """Tokens one model spent on a job, in its role: the teacher, or the verifier that asked it."""

    model: str
    role: str
    prompt_tokens: int
    completion_tokens: int


class FailedTask(BaseModel):
    prompt_id: str
    attempt: int
    last_error: str | None


class JobOut(BaseModel):
    id: str
    name: str | None
    owner: str | None = Field(description="The name of the API token that created the job.")
    status: str
    status_reason: str | None = Field(description="Why the job is paused, when it is.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]
    tasks: TaskCounts
    samples: SampleCounts
    verifiers: list[VerifierStats]
    rejection_reasons: dict[str, int]
    tokens: dict[str, int]
    usage: list[ModelUsage] = Field(default_factory=list, description="Tokens by model: teacher, judges.")
    failed_tasks: list[FailedTask]
    shards: int


class JobSummary(BaseModel):
    id: str
    name: str | None
    owner: str | None
    status: str
    status_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tasks: TaskCounts
    samples: SampleCounts
    tokens: dict[str, int]


class VerdictOut(BaseModel):
    verifier: str
    accepted: bool
    reason: str | None
    details: dict[str, Any]


class SampleOut(BaseModel):
    id: int
    prompt_id: str
    sample_index: int
    messages: list[dict[str, str]]
    reference: str | None
    completion: str
    think: str | None
    answer: str | None
    finish_reason: str | None
    completion_tokens: int
    accepted: bool
    reason: str | None
    entropy: float | None = Field(
        default=None,
        description="The teacher's mean token entropy (nats, top-k), where soft labels were asked for.",
    )
    verdicts: list[VerdictOut]


class SamplePage(BaseModel):
    items: list[SampleOut]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null at the end.")
    prev_cursor: int | None = Field(
        default=None, description="Pass as ?before= for the previous page; null on the first."
    )


class ShardOut(BaseModel):
    id: int
    kind: str
    path: str = Field(description="Relative to the shard directory.")
    location: str = Field(description="Where the server wrote it: an absolute path.")
    num_rows: int
    num_bytes: int


class PassRateOut(BaseModel):
    prompt_id: str
    samples: int
    accepted: int
    pass_rate: float = Field(description="accepted / samples")


class PassRatePage(BaseModel):
    items: list[PassRateOut]
    next_cursor: int | None = Field(description="Pass as ?cursor= for the next page; null at the end.")


class DifficultyBucket(BaseModel):
    """A job's finished prompts whose pass rate is above ``above`` (none: from 0 itself) and at most
    ``up_to``, and what they cost."""

    above: float | None
    up_to: float
    prompts: int
    samples: int
    accepted: int
    completion_tokens: int
    tokens_per_accepted: float | None = Field(description="Teacher tokens per accepted sample.")


class WorkerOut(BaseModel):
    """A worker process and its last heartbeat."""

    owner: str = Field(description="The worker's identity, as the leases of its tasks name it.")
    host: str
    pid: int
    gpus: int = Field(description="GPUs visible to it (CUDA_VISIBLE_DEVICES, or nvidia-smi).")
    teachers: list[str] = Field(description="The teacher servers (or in-process engines) it talks to.")
    in_flight: int = Field(description="Tasks it held at its last beat.")
    started_at: datetime
    last_seen: datetime
    stopped_at: datetime | None
    live: bool = Field(description="Still beating: not stopped, and its last beat recent.")

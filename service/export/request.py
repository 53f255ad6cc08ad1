"""An export as asked for (``ExportIn``, over HTTP or from ``tracemill export``) and as the API reports it
(``ExportOut``); a bad field is a 422 whose message names it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from service.schemas import Strict


class ExportIn(Strict):
    """An export of jobs' accepted samples. Over HTTP, the files it names are read from the operator's
    import folder (TRACEMILL_IMPORT_DIR) only, and a push goes only to repositories TRACEMILL_HUB_REPOS
    allows."""

    jobs: list[str] = Field(min_length=1)
    general: list[str] = Field(default_factory=list)
    reasoning_share: float = Field(default=0.8, gt=0, le=1)
    keep_per_prompt: int = Field(default=1, ge=1)
    template: Literal["think", "answer_tag"] = "think"
    format: Literal["messages", "prompt-completion"] = Field(
        default="messages",
        description="messages: one `messages` column; prompt-completion: `prompt` (the turns before the "
        "assistant's) and `completion` (the assistant turn), TRL's conversational prompt-completion form, "
        "whose loss SFTTrainer takes on the completion only.",
    )
    order: Literal["shuffled", "curriculum"] = Field(
        default="shuffled",
        description="curriculum: rows easy to hard by `difficulty` (shards in that order, ties shuffled), "
        "general rows spread through it.",
    )
    difficulty: Literal["teacher", "student", "entropy"] = Field(
        default="teacher",
        description="What the curriculum and the pass-rate bounds read: the teacher's pass rate of each "
        "prompt, or the student's, from the probe job the teacher job took its prompts from; or the "
        "teacher's mean token entropy of each sample (lowest first; jobs with soft labels; no bounds).",
    )
    min_pass_rate: float = Field(default=0.0, ge=0, le=1, description="Reasoning rows below it are left out.")
    max_pass_rate: float = Field(default=1.0, ge=0, le=1, description="Reasoning rows above it are left out.")
    seed: int = 0
    test_size: float = Field(default=0.0, ge=0, lt=1)
    decontaminate: list[str] = Field(default_factory=list)
    ngram: int = Field(default=8, ge=1, le=64)
    template_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="An evaluation n-gram in more than this share of one task's training prompts is a "
        "template (a fixed instruction), ignored by decontamination; 1 ignores none.",
    )
    template_min_rows: int = Field(default=10, ge=1, description="…and in at least this many of them.")
    shard_rows: int = Field(default=20_000, ge=100)
    license: str = Field(default="other", max_length=100)
    push_to_hub: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    private: bool = True
    soft_labels: bool = Field(
        default=False,
        description="Also write soft_labels/: per reasoning row the student's token ids of prompt and "
        "completion, a loss mask and the teacher's top-k ids and log-probabilities.",
    )
    student_tokenizer: str | None = Field(
        default=None,
        max_length=300,
        description="The student's tokenizer (Hub name or path); must be the jobs' teacher tokenizer.",
    )

    @model_validator(mode="after")
    def _a_range(self) -> ExportIn:
        if self.min_pass_rate > self.max_pass_rate:
            raise ValueError("max_pass_rate: must not be below min_pass_rate")
        if self.difficulty == "entropy" and (self.min_pass_rate, self.max_pass_rate) != (0, 1):
            raise ValueError("min_pass_rate: the bounds are on a pass rate, not on difficulty entropy")
        return self

    @model_validator(mode="after")
    def _tokenizer_for_soft_labels(self) -> ExportIn:
        if self.soft_labels and not self.student_tokenizer:
            raise ValueError(
                "student_tokenizer: required with soft_labels (the student's tokenizer name or path)"
            )
        return self


class ExportOut(BaseModel):
    id: str
    status: str
    location: str = Field(description="The dataset folder on the server.")
    rows_written: int
    report: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

"""What a job may ask of difficulty: its prompts chosen by another job's pass rates (``prompts_from``),
and its samples spent where they are worth it (``adaptive_budget``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PromptsFromIn(BaseModel):
    """A job's prompts taken from another job's results by their pass rate there: accepted samples over
    samples of each finished prompt. From a student probe (``role: student``), e.g. the prompts the
    student solved in at most 1 of 4 (``max_pass_rate: 0.25``)."""

    model_config = ConfigDict(extra="forbid")

    job: str = Field(
        min_length=1, max_length=64, description="The job whose prompts and pass rates are read."
    )
    min_pass_rate: float = Field(default=0.0, ge=0, le=1)
    max_pass_rate: float = Field(default=1.0, ge=0, le=1)
    limit: int | None = Field(default=None, ge=1, description="At most this many, the first in `order`.")
    order: Literal["hardest", "easiest"] = Field(
        default="hardest",
        description="Which come first under `limit`: the lowest pass rates, or the highest.",
    )

    @model_validator(mode="after")
    def _a_range(self) -> PromptsFromIn:
        if self.min_pass_rate > self.max_pass_rate:
            raise ValueError("max_pass_rate: must not be below min_pass_rate")
        return self


class AdaptiveBudgetIn(BaseModel):
    """A budget in samples for the whole job, spent where it is worth it: each prompt gets a first
    round of ``first_round`` samples; one still without an accepted sample gets further rounds of as
    many, up to the job's ``n`` in all, while the budget lasts; a prompt stops at its
    ``stop_after_accepted``-th accepted sample (1 unless set). A prompt the teacher solves at once thus
    costs one round, and a hard one gets what the easy ones left."""

    model_config = ConfigDict(extra="forbid")

    total_samples: int = Field(ge=1, le=2**40, description="Samples the whole job may draw, never more.")
    first_round: int = Field(default=1, ge=1, description="Samples per round; at most the job's n.")

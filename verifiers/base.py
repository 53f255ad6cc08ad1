"""The verdict type and the verifier protocol every plugin implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Candidate:
    """A sample as verifiers see it: the teacher's text, split, plus what the task knows."""

    completion: str
    think: str | None
    answer: str | None
    finish_reason: str | None = None
    completion_tokens: int = 0
    messages: tuple[dict[str, str], ...] = ()
    reference: str | None = None
    tests: tuple[dict[str, Any], ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Verdict(BaseModel):
    """Accepted or not, with a machine-readable reason ``<verifier>:<code>`` when not."""

    model_config = ConfigDict(frozen=True)

    accepted: bool
    reason: str | None = None
    details: dict[str, Any] = {}

    @classmethod
    def accept(cls, **details: Any) -> Verdict:
        return cls(accepted=True, details=details)

    @classmethod
    def reject(cls, verifier: str, code: str, **details: Any) -> Verdict:
        return cls(accepted=False, reason=f"{verifier}:{code}", details=details)


class NamedVerdict(NamedTuple):
    """A verdict under the name the job gave its verifier, as the runner hands it back and the queue
    stores it: a plain tuple, which crosses from a pool process several times faster than a model."""

    verifier: str
    accepted: bool
    reason: str | None
    details: dict[str, Any]


class NoOptions(BaseModel):
    """Options model for verifiers that take none; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Verifier(Protocol):
    """A pure check. ``Options`` is validated when a job is submitted; ``verify`` must not raise on
    bad model output (the runner turns an exception into ``<name>:error`` all the same)."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: BaseModel) -> None: ...

    def verify(self, candidate: Candidate) -> Verdict: ...

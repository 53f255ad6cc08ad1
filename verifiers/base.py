"""The verdict type and the protocols a plugin implements: a check of one sample (``kind = "sample"``,
the default), of a prompt's samples together (``"group"``), or a question to a model (``"model"``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

DETAIL_CHARS = 300  # of a text quoted in a verdict's details: enough to see it, small in every shard row

# A prompt's code tests as its dataset stores them: a list, an object, or the JSON or Python text of
# either (``verifiers/code/test_layouts.py`` reads every layout).
Tests = list[Any] | dict[str, Any] | str


@dataclass(frozen=True)
class Candidate:
    """A sample as verifiers see it: the teacher's text, split, plus what the task knows: the prompt's
    id and its own ``metadata`` (as the job's prompt gave it), the sample's index among the prompt's
    samples; ``tests`` as the prompt gave them. ``extra`` holds what an offline run adds
    (``tracemill verify``'s per-row language)."""

    completion: str
    think: str | None
    answer: str | None
    finish_reason: str | None = None
    completion_tokens: int = 0
    messages: tuple[dict[str, str], ...] = ()
    reference: str | None = None
    tests: Tests | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    prompt_id: str | None = None
    metadata: dict[str, Any] | None = None
    sample_index: int = 0


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
    stores it: a plain tuple, which crosses from a pool process several times faster than a model.
    ``seconds`` is what the verifier spent on it (for the job's per-verifier cost, not stored)."""

    verifier: str
    accepted: bool
    reason: str | None
    details: dict[str, Any]
    seconds: float = 0.0

    @property
    def counts(self) -> bool:
        """Whether it decides the sample: not when a fallback verifier judged in its place."""
        return self.accepted or SUPERSEDED_BY not in self.details


SUPERSEDED_BY = "superseded_by"  # in a verdict's details: the fallback verifier that judged instead
VerifierKind = Literal["sample", "group", "model"]


class NoOptions(BaseModel):
    """Options model for verifiers that take none; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Verifier(Protocol):
    """A pure check of one sample. ``Options`` is validated when a job is submitted; ``verify`` must
    not raise on bad model output (the runner turns an exception into ``<name>:error`` all the same).
    Runs in the worker's verifier pool."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]

    def __init__(self, options: BaseModel) -> None: ...

    def verify(self, candidate: Candidate) -> Verdict: ...


class PartialVerifier(Verifier, Protocol):
    """A sample verifier that can also judge a sample while the teacher is still writing it, so that
    the worker stops paying for one already lost (the job's ``abort_early``).

    ``verify_partial`` gets the sample so far (``finish_reason`` None, ``completion_tokens`` so far)
    and ``seen``, how many characters of its ``completion`` earlier calls saw, so that a check may
    look at what is new. It returns None to go on, or a rejection, and only when every continuation
    of the text would get that rejection from ``verify``: an early check must never reject a sample
    that the full check would accept. It runs in the worker's event loop every few dozen tokens, so
    it must be quick (a third call over 50 ms of CPU turns it off in that worker) and must not raise
    (an exception only means "go on"). The aborted sample is stored, truncated, with that verdict
    and ``aborted_at_token`` in its details."""

    def verify_partial(self, candidate: Candidate, seen: int) -> Verdict | None: ...


class GroupVerifier(Protocol):
    """A pure check of all of a prompt's samples at once (``kind = "group"``), such as a majority
    vote: one verdict per candidate, in order. Runs in the pool once a round's samples are in, over
    every sample the prompt has so far; the verdicts of its last run are the ones committed."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    kind: ClassVar[VerifierKind]

    def __init__(self, options: BaseModel) -> None: ...

    def verify_group(self, candidates: Sequence[Candidate]) -> list[Verdict]: ...


class ModelVerifier(Protocol):
    """A verdict asked of a model (``kind = "model"``), such as a judge. The worker sends the
    question with the teacher's own client (retries, failover, pausing the job when the model is
    down), never from a pool process; the verifier only writes the question and reads the reply."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    kind: ClassVar[VerifierKind]
    endpoint_option: ClassVar[str]  # the option that names the model, for error messages

    def __init__(self, options: BaseModel) -> None: ...

    def endpoint(self) -> dict[str, Any]:
        """The model to ask, in a job's ``teacher`` shape (base_url, model, api_key_env, ...)."""
        ...

    def question(self, candidate: Candidate) -> list[dict[str, str]] | Verdict:
        """The chat messages to send, or a verdict when no question is needed."""
        ...

    def sampling(self) -> dict[str, Any]:
        """Sampling settings of the question (temperature, max_tokens)."""
        ...

    def read(self, candidate: Candidate, reply: str) -> Verdict: ...


def kind_of(cls: type[Any]) -> VerifierKind:
    """A verifier class's kind; plugins that predate kinds check one sample."""
    kind: VerifierKind = getattr(cls, "kind", "sample")
    return kind

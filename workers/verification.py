"""A task's samples through its job's verifiers, in three stages: checks of one sample in the verifier
pool; questions to a model (a judge), sent from the worker's event loop with the teacher's client so
that they hold no pool process and share its retries, failover and pausing; then checks of all of the
prompt's samples together (``majority``), rerun over every sample drawn so far after each round.

A verifier with ``fallback_for`` decides only for samples an earlier verifier rejected with one of
those reasons; where it does, that verdict is kept but set aside (``details.superseded_by``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from service.errors import TeacherRejected, TeacherUnavailable
from service.settings import read_environment_variable
from verifiers.base import SUPERSEDED_BY, Candidate, NamedVerdict, Verdict, kind_of
from verifiers.registry import load_verifier
from verifiers.runner import ERROR_TEXT_LIMIT, VerifierRunner, VerifierSpec, named
from workers.teachers import Teachers, TeacherTarget, target_from_teacher

# Statuses with which a model refuses one question (too long, malformed) rather than every question.
QUESTION_REFUSED = frozenset({400, 413, 422})


class ModelUnavailable(TeacherUnavailable):
    """A verifier's model is unreachable: the job pauses as for its teacher, nothing is rejected."""


@dataclass(frozen=True)
class ModelCheck:
    """A model verifier of a job, with the model it asks (its key read, when the policy allowed)."""

    spec: VerifierSpec
    verifier: Any  # a ModelVerifier (verifiers/base.py)
    target: TeacherTarget
    key_env: str | None
    key_missing: bool
    key_field: str  # where the job names its key variable, for the error when it is not set


@dataclass(frozen=True)
class VerifierPlan:
    """A job's verifiers, sorted into their stages; ``order`` is the job's, which verdicts keep."""

    sample: tuple[VerifierSpec, ...] = ()
    models: tuple[ModelCheck, ...] = ()
    group: tuple[VerifierSpec, ...] = ()
    fallbacks: dict[str, frozenset[str]] = field(default_factory=dict)
    order: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, verifiers: Sequence[dict[str, Any]], read_keys: bool) -> VerifierPlan:
        """The plan of a job's ``verifiers``; model verifiers' keys are read only with ``read_keys``
        (the operator's policy allows every model the job names)."""
        sample: list[VerifierSpec] = []
        group: list[VerifierSpec] = []
        models: list[ModelCheck] = []
        for index, entry in enumerate(verifiers):
            spec = VerifierSpec(entry["name"], entry.get("options") or {})
            verifier_cls = load_verifier(spec.name)
            kind = kind_of(verifier_cls)
            if kind == "model":
                verifier = verifier_cls(verifier_cls.Options.model_validate(spec.options))
                settings = verifier.endpoint()  # type: ignore[attr-defined]
                key_env = settings.get("api_key_env")
                key = read_environment_variable(key_env) if key_env and read_keys else None
                target = target_from_teacher(settings, key)
                key_field = f"verifiers.{index}.options.{verifier.endpoint_option}.api_key_env"  # type: ignore[attr-defined]
                missing = bool(key_env) and key is None
                models.append(ModelCheck(spec, verifier, target, key_env, missing, key_field))
            else:
                (group if kind == "group" else sample).append(spec)
        return cls(
            tuple(sample),
            tuple(models),
            tuple(group),
            {v["name"]: frozenset(v["fallback_for"]) for v in verifiers if v.get("fallback_for")},
            tuple(v["name"] for v in verifiers),
        )

    def missing_key(self) -> str | None:
        """The first model key variable the job names that is not set, and where it names it."""
        return next((f"{m.key_env} ({m.key_field})" for m in self.models if m.key_missing), None)


@dataclass
class Verification:
    """Runs a worker's verdicts; model questions share ``max_in_flight`` slots of their own."""

    runner: VerifierRunner
    teachers: Teachers
    max_in_flight: int
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.max_in_flight)

    async def each(
        self, plan: VerifierPlan, candidates: Sequence[Candidate], more_coming: Any = None
    ) -> list[list[NamedVerdict]]:
        """The verdicts of every sample and model verifier for each candidate, fallbacks applied.

        Raises:
            ModelUnavailable: a model verifier's model could not be reached.
            TeacherRejected: it refused the job's questions (a wrong key or model name).
        """
        verdicts = await self.runner.verify(plan.sample, candidates, more_coming)
        if plan.models:
            asked = await asyncio.gather(
                *(self._models(plan, c, v) for c, v in zip(candidates, verdicts, strict=True))
            )
            verdicts = [own + extra for own, extra in zip(verdicts, asked, strict=True)]
        return [_in_order(plan, _with_fallbacks(plan, v)) for v in verdicts]

    async def together(self, plan: VerifierPlan, candidates: Sequence[Candidate]) -> list[list[NamedVerdict]]:
        """The group verifiers' verdicts over all of a prompt's samples so far."""
        if not plan.group:
            return [[] for _ in candidates]
        return await self.runner.verify(plan.group, candidates, group=True)

    async def _models(
        self, plan: VerifierPlan, candidate: Candidate, earlier: list[NamedVerdict]
    ) -> list[NamedVerdict]:
        """The model verifiers' verdicts on one sample; a fallback is asked only where it is needed."""
        reasons = {v.reason for v in earlier if not v.accepted}
        wanted = [
            check
            for check in plan.models
            if check.spec.name not in plan.fallbacks or reasons & plan.fallbacks[check.spec.name]
        ]
        return list(await asyncio.gather(*(self._ask(check, candidate) for check in wanted)))

    async def _ask(self, check: ModelCheck, candidate: Candidate) -> NamedVerdict:
        name = check.spec.name
        started = time.perf_counter()
        try:
            question = check.verifier.question(candidate)
        except Exception as exc:  # as in read(): a plugin's bug becomes a verdict, not a failed task
            return _named(name, _plugin_error(name, exc), time.perf_counter() - started, {})
        if isinstance(question, Verdict):
            return _named(name, question, time.perf_counter() - started, {})
        async with self._slots:
            try:
                result = await self.teachers.chat(check.target, question, check.verifier.sampling(), 1)
            except TeacherRejected as exc:
                if exc.status not in QUESTION_REFUSED:
                    raise TeacherRejected(f"{name} ({check.target.model}): {exc.message}") from exc
                refused = Verdict.reject(name, "unavailable", error=exc.message[:ERROR_TEXT_LIMIT])
                return _named(name, refused, time.perf_counter() - started, {})
            except TeacherUnavailable as exc:
                detail = exc.message.removeprefix("teacher unreachable").lstrip(": ")
                raise ModelUnavailable(f"{name} unreachable ({check.target.model}): {detail}") from exc
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
        reply = (result.choices[0].content or "") if result.choices else ""
        try:
            verdict = check.verifier.read(candidate, reply)
        except Exception as exc:  # a plugin's bug must become a verdict, not a lost sample
            verdict = _plugin_error(name, exc)
        return _named(name, verdict, time.perf_counter() - started, usage)


def _plugin_error(name: str, exc: Exception) -> Verdict:
    return Verdict.reject(name, "error", error=f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT])


def _named(name: str, verdict: Verdict, seconds: float, usage: dict[str, int]) -> NamedVerdict:
    """The verdict under the job's name for its verifier, with its time and its model's tokens."""
    out = named(name, verdict)._replace(seconds=seconds)
    return out._replace(details={**out.details, "usage": usage}) if usage else out


def _with_fallbacks(plan: VerifierPlan, verdicts: list[NamedVerdict]) -> list[NamedVerdict]:
    """Set aside each rejection a fallback decided in place of; drop a fallback's verdict where no
    rejection called for it (a sample verifier runs on every sample in the pool)."""
    by_name = {v.verifier: v for v in verdicts}
    superseded: dict[int, str] = {}
    dropped: set[str] = set()
    for name, reasons in plan.fallbacks.items():
        if name not in by_name:
            continue
        matched = [i for i, v in enumerate(verdicts) if not v.accepted and v.reason in reasons]
        if not matched:
            dropped.add(name)
        for i in matched:
            superseded.setdefault(i, name)
    return [
        v._replace(details={**v.details, SUPERSEDED_BY: superseded[i]}) if i in superseded else v
        for i, v in enumerate(verdicts)
        if v.verifier not in dropped
    ]


def _in_order(plan: VerifierPlan, verdicts: list[NamedVerdict]) -> list[NamedVerdict]:
    rank = {name: i for i, name in enumerate(plan.order)}
    return sorted(verdicts, key=lambda v: rank.get(v.verifier, len(rank)))

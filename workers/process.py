"""One task: ask the teacher for n samples, split and verify them, commit them with the task."""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine

from service.database import budget, queue
from service.database.finishing import NewSample
from service.database.prompts import conversation
from service.database.queue import ClaimedTask
from service.errors import TeacherNotInstalled, TeacherRejected, TeacherUnavailable
from service.reasoning import split_completion
from service.security.teachers import TeacherPolicy
from service.settings import read_environment_variable
from service.storage.soft_labels import pack
from verifiers.base import Candidate
from verifiers.runner import VerifierRunner
from workers.commit import Committer
from workers.early_abort import PartialChecks
from workers.teacher import ChatResult, backoff_delay
from workers.teachers import Teachers, TeacherTarget, target_from_teacher
from workers.verification import ModelUnavailable, Verification, VerifierPlan
from workers.wakeup import Wakeup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobPlan:
    """The parts of a job's spec a worker needs, resolved once per job."""

    teacher: TeacherTarget
    sampling: dict[str, Any]
    n: int
    verifiers: VerifierPlan
    missing_key: str | None  # "VAR (field)" of a key variable the job names that is not set here
    spec: dict[str, Any]
    stop_after_accepted: int | None = None
    top_logprobs: int | None = None  # soft labels: the teacher's top-k log-probabilities per token
    refused: str | None = None  # why this worker's policy forbids the job's teacher (no key was read)
    early_checks: PartialChecks | None = None  # abort_early: stream each sample past these checks
    first_round: int | None = None  # adaptive budget: samples per round, later rounds reserved

    def still_wanted(self, samples: list[NewSample]) -> int:
        """How many samples to ask for next: the rest of ``n``, or with early stop only as many as
        the accepted samples still missing (0 once there are enough); with an adaptive budget, a
        round of ``first_round`` while any are missing."""
        left = self.n - len(samples)
        if self.stop_after_accepted is None:
            return left
        missing = self.stop_after_accepted - sum(s.accepted for s in samples)
        if missing > 0 and self.first_round is not None:
            return min(left, self.first_round)
        return max(0, min(left, missing))

    def conversation(self, task: ClaimedTask) -> list[dict[str, str]]:
        return conversation(task.prompt, task.messages, self.spec)

    def models(self) -> list[TeacherTarget]:
        """Every model the job calls: its teacher, then its verifiers' (a judge)."""
        return [self.teacher, *(check.target for check in self.verifiers.models)]

    @classmethod
    def from_spec(cls, spec: dict[str, Any], policy: TeacherPolicy) -> JobPlan:
        """The plan, with keys read only if the operator's policy lets this job use every model it
        names (its teacher and any judge)."""
        teacher = spec["teacher"]
        refusal = policy.job_refusal(spec)
        key_env = teacher.get("api_key_env")
        key = read_environment_variable(key_env) if key_env and refusal is None else None
        verifiers = VerifierPlan.from_spec(spec["verifiers"], read_keys=refusal is None)
        missing = f"{key_env} (teacher.api_key_env)" if key_env and key is None else verifiers.missing_key()
        return cls(
            teacher=target_from_teacher(teacher, key),
            sampling={k: v for k, v in spec["sampling"].items() if v is not None},
            n=spec["n"],
            verifiers=verifiers,
            missing_key=missing if refusal is None else None,
            spec=spec,
            stop_after_accepted=spec.get("stop_after_accepted"),
            top_logprobs=(spec.get("soft_labels") or {}).get("top_k"),
            refused=f"refused by this worker: {refusal.field}: {refusal.message}" if refusal else None,
            early_checks=PartialChecks.of(spec["verifiers"]) if spec.get("abort_early") else None,
            first_round=(spec.get("adaptive_budget") or {}).get("first_round"),
        )


def task_seed(job_seed: int, prompt_id: str) -> int:
    """A per-prompt seed, so that a retried task asks for the very same samples."""
    return (job_seed ^ zlib.crc32(prompt_id.encode())) & 0x7FFFFFFF


def apportion(total: int, weights: list[int]) -> list[int]:
    """Split a request's token count over its samples in proportion to their length, summing exactly.

    OpenAI-compatible servers report usage per request, not per choice.
    """
    if not any(weights):
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w / whole for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def to_samples(
    task: ClaimedTask, messages: list[dict[str, str]], result: ChatResult, first_index: int = 0
) -> tuple[list[NewSample], list[Candidate]]:
    splits = [split_completion(c.content, c.reasoning) for c in result.choices]
    if all(c.tokens is not None for c in result.choices):  # streamed one by one: exact counts
        tokens = [c.tokens or 0 for c in result.choices]
    elif all(c.soft_labels is not None for c in result.choices):  # per-token labels: exact counts
        tokens = [len(c.soft_labels) for c in result.choices if c.soft_labels is not None]
    else:
        tokens = apportion(result.completion_tokens, [len(s.completion) for s in splits])
    samples, candidates = [], []
    for choice, split, used in zip(result.choices, splits, tokens, strict=True):
        index = first_index + choice.index
        samples.append(NewSample(index, split.completion, split.answer, choice.finish_reason, used))
        candidates.append(
            replace(
                task_candidate(task, messages, index),
                completion=split.completion,
                think=split.think,
                answer=split.answer,
                finish_reason=choice.finish_reason,
                completion_tokens=used,
            )
        )
    return samples, candidates


def task_candidate(task: ClaimedTask, messages: list[dict[str, str]], index: int) -> Candidate:
    """What verifiers know of sample ``index`` before its text: the task's side of the candidate."""
    return Candidate(
        completion="",
        think=None,
        answer=None,
        messages=tuple(messages),
        reference=task.reference,
        tests=task.tests,
        prompt_id=task.prompt_id,
        metadata=task.metadata,
        sample_index=index,
    )


@dataclass
class PhaseTimes:
    """Where a worker's tasks spent their time (summed over tasks, so phases overlap in wall time)."""

    claim_s: float = 0.0
    claims: int = 0
    queued_s: float = 0.0  # claimed, waiting for a request slot
    request_s: float = 0.0
    requests: int = 0
    verify_s: float = 0.0
    write_s: float = 0.0
    samples: int = 0


@dataclass
class TaskProcessor:
    """Runs tasks for one worker; every database write is fenced by the task's lease.

    A task holds one of ``max_in_flight`` request slots only while its teacher request is out, so
    verifying and committing a reply never keeps the teacher from getting the next request.
    """

    engine: Engine
    owner: str
    teacher: Teachers
    runner: VerifierRunner
    max_attempts: int
    max_in_flight: int
    times: PhaseTimes = field(default_factory=PhaseTimes)
    awaiting_reply: set[int] = field(default_factory=set)  # claimed tasks whose request is not answered
    replied: Wakeup = field(default_factory=Wakeup)
    stopping: Callable[[], bool] = lambda: False  # the worker is shutting down
    _working: set[int] = field(default_factory=set)  # tasks being run, not yet committing

    def __post_init__(self) -> None:
        self._request_slots = asyncio.Semaphore(self.max_in_flight)
        self.verification = Verification(self.runner, self.teacher, self.max_in_flight)
        self.committer = Committer(self.engine, self.owner, lambda: len(self._working))

    def start(self, task: ClaimedTask, plan: JobPlan) -> asyncio.Task[str]:
        """Run a task in the background. It counts as awaiting its reply from now on, not from its
        first step: a claim loop that counted the requests it still owes before its new tasks had
        run once would see the same room again and claim as many twice."""
        self.awaiting_reply.add(task.id)
        self._working.add(task.id)
        running = asyncio.create_task(self._run(task, plan))
        running.add_done_callback(lambda _: self._ended(task.id))  # also if cancelled before it ran
        return running

    def _ended(self, task_id: int) -> None:
        self._replied(task_id)
        self._working.discard(task_id)
        self.committer.poke()

    def _replies_awaited(self) -> bool:
        """Whether replies are still to come, which the verifier pool's batch may wait for."""
        return bool(self.awaiting_reply)

    def _replied(self, task_id: int) -> None:
        if task_id in self.awaiting_reply:
            self.awaiting_reply.discard(task_id)
            self.replied.set()

    async def _run(self, task: ClaimedTask, plan: JobPlan) -> str:
        """Process one task to an end state; returns what happened (for logs and counters)."""
        if plan.refused:
            return await self._retry(task, plan.refused)
        if plan.missing_key:
            return await self._retry(
                task, f"environment variable {plan.missing_key} is not set on the worker"
            )
        messages = plan.conversation(task)
        drawn: list[NewSample] = []  # with their own verdicts
        candidates: list[Candidate] = []
        samples: list[NewSample] = []  # with the group verdicts over all drawn so far, too
        prompt_tokens = 0
        extra: int | None = 0 if plan.first_round is not None else None  # drawn past the first round
        try:
            # One request for all n samples; with early stop, rounds asking only for the accepted
            # samples still missing, until there are enough or n were drawn; with an adaptive budget,
            # each round after the first reserved from the job's budget, until it is spent.
            while (count := plan.still_wanted(samples)) > 0:
                if extra is not None and drawn:
                    count = await asyncio.to_thread(
                        budget.reserve, self.engine, task, self.owner, count, extra
                    )
                    if count == 0:
                        break
                    extra += count
                result = await self._request(task, plan, messages, count, first_index=len(drawn))
                new, new_candidates = await self._verified(task, plan, messages, result, len(drawn))
                drawn, candidates = drawn + new, candidates + new_candidates
                samples = await self._grouped(plan, drawn, candidates)
                prompt_tokens += result.prompt_tokens
                if not result.choices:
                    break
        except TeacherUnavailable as exc:
            if self.stopping():
                # Going down with its host (a Slurm node cancelled takes its loopback teacher along):
                # the teacher is gone for this worker only, so the task goes back for other hosts.
                await asyncio.to_thread(queue.release, self.engine, self.owner, [task.id])
                return "released"
            # The teacher (or a judge) is down, not this prompt: hold the job rather than spend the
            # prompt's attempts.
            said = isinstance(exc, ModelUnavailable) or exc.message.startswith("teacher unreachable")
            reason = exc.message if said else f"teacher unreachable: {exc.message}"
            await asyncio.to_thread(queue.pause_for_teacher, self.engine, task, self.owner, reason)
            log.warning("job %s paused: %s", task.job_id, reason)
            return "paused"
        except TeacherNotInstalled as exc:
            return await self._retry(task, exc.message)
        except TeacherRejected as exc:
            await asyncio.to_thread(queue.fail, self.engine, task, self.owner, exc.message)
            return "failed"
        started = time.perf_counter()
        self._working.discard(task.id)
        await self.committer.commit(task, samples, prompt_tokens, extra)
        self.times.write_s += time.perf_counter() - started
        self.times.samples += len(samples)
        return "done"

    async def _request(
        self, task: ClaimedTask, plan: JobPlan, messages: list[dict[str, str]], count: int, first_index: int
    ) -> ChatResult:
        """``count`` samples from ``first_index`` on, holding a request slot only while they are out:
        one request for all of them, or with ``abort_early`` one stream each."""
        sampling = dict(plan.sampling)
        # Sample i is seeded seed + i, the same on a retry of the task, as vLLM seeds the i-th choice of
        # a request: one request of n, or n requests of one, draw the same samples.
        seed = task_seed(sampling["seed"], task.prompt_id) + first_index if "seed" in sampling else None
        self.awaiting_reply.add(task.id)
        claimed = time.perf_counter()
        async with self._request_slots:
            sent = time.perf_counter()
            try:
                if plan.early_checks is None:
                    if seed is not None:
                        sampling["seed"] = seed & 0x7FFFFFFF
                    return await self.teacher.chat(plan.teacher, messages, sampling, count, plan.top_logprobs)
                samplings = [
                    dict(sampling, seed=(seed + i) & 0x7FFFFFFF) if seed is not None else sampling
                    for i in range(count)
                ]
                return await self._streams(task, plan, messages, samplings, first_index)
            finally:
                self._replied(task.id)
                self.times.queued_s += sent - claimed
                self.times.request_s += time.perf_counter() - sent
                self.times.requests += 1

    async def _streams(
        self,
        task: ClaimedTask,
        plan: JobPlan,
        messages: list[dict[str, str]],
        samplings: list[dict[str, Any]],
        first_index: int,
    ) -> ChatResult:
        """A stream of its own per sample (``samplings``: each one's settings), watched by the job's
        early checks. The prompt's tokens are counted once, as for one request of n: the server's
        prefix cache holds it for the others."""
        checks = plan.early_checks
        assert checks is not None

        async def one(offset: int) -> ChatResult:
            watch = checks.watch(task_candidate(task, messages, first_index + offset))
            return await self.teacher.stream(plan.teacher, messages, samplings[offset], watch)

        results = await asyncio.gather(*(one(offset) for offset in range(len(samplings))))
        choices = [replace(r.choices[0], index=offset) for offset, r in enumerate(results)]
        return ChatResult(choices, results[0].prompt_tokens, sum(r.completion_tokens for r in results))

    async def _verified(
        self,
        task: ClaimedTask,
        plan: JobPlan,
        messages: list[dict[str, str]],
        result: ChatResult,
        first_index: int,
    ) -> tuple[list[NewSample], list[Candidate]]:
        """A reply's samples with the verdicts of their own (sample and model verifiers)."""
        samples, candidates = to_samples(task, messages, result, first_index)
        started = time.perf_counter()
        # An aborted sample keeps the verdict that ended it: the rest would judge a cut-off text.
        whole = [c for c, choice in zip(candidates, result.choices, strict=True) if choice.aborted is None]
        judged = iter(await self.verification.each(plan.verifiers, whole, self._replies_awaited))
        verdicts = [[choice.aborted] if choice.aborted else next(judged) for choice in result.choices]
        self.times.verify_s += time.perf_counter() - started
        kept = []
        for drawn, named, choice in zip(samples, verdicts, result.choices, strict=True):
            sample = replace(drawn, verdicts=tuple(named))
            if choice.soft_labels is not None:
                sample = replace(sample, entropy=choice.soft_labels.mean_entropy())
            # Soft labels cost ~70 bytes a token: only samples that will be trained on pack theirs.
            if sample.accepted and choice.soft_labels is not None:
                sample = replace(sample, soft_labels=pack(choice.soft_labels))
            kept.append(sample)
        return kept, candidates

    async def _grouped(
        self, plan: JobPlan, drawn: list[NewSample], candidates: list[Candidate]
    ) -> list[NewSample]:
        """The samples drawn so far with the group verifiers' verdicts over all of them; a sample
        those reject drops its soft labels."""
        if not plan.verifiers.group:
            return drawn
        started = time.perf_counter()
        together = await self.verification.together(plan.verifiers, candidates)
        self.times.verify_s += time.perf_counter() - started
        samples = [replace(s, verdicts=(*s.verdicts, *g)) for s, g in zip(drawn, together, strict=True)]
        return [s if s.accepted else replace(s, soft_labels=None) for s in samples]

    async def _retry(self, task: ClaimedTask, error: str) -> str:
        delay = backoff_delay(task.attempt)
        status = await asyncio.to_thread(
            lambda: queue.retry(
                self.engine, task, self.owner, error, delay_s=delay, max_attempts=self.max_attempts
            )
        )
        log.warning(
            "task %s (prompt %s) attempt %d: %s -> %s", task.id, task.prompt_id, task.attempt, error, status
        )
        return status

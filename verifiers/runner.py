"""Run a job's verifiers over a task's samples in a process pool, each call under a deadline.

A verifier that raises or overruns becomes a rejection (``<name>:error`` / ``<name>:timeout``); it can
never take the worker down. Inside a pool process every verifier call runs under SIGALRM (pool
processes run calls on their main thread, where signals work). Should a call hang where no signal can
reach it, the parent's wall-clock deadline expires, the pool's processes are killed and the pool is
replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from verifiers.base import Candidate, NamedVerdict, Verdict, Verifier
from verifiers.registry import load_verifier, verifier_names

DEFAULT_TIMEOUT_S = 10.0
DEADLINE_SLACK_S = 5.0
MAX_BATCH_CANDIDATES = 64
# Long enough that a worker with a few replies a second hands the pool several tasks at a time: each
# batch costs three threads of the worker a wake-up (the pool's manager and feeder, and the event loop).
BATCH_LINGER_S = 0.5
ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True)
class VerifierSpec:
    """A verifier as a job names it."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


class _OverranError(Exception):
    pass


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise _OverranError


def spec_timeout(spec: VerifierSpec, default_s: float) -> float:
    """A verifier's own bound when its options set ``timeout_s`` (math does), else the runner's."""
    value = spec.options.get("timeout_s")
    return float(value) if isinstance(value, int | float) and value > 0 else default_s


@lru_cache(maxsize=256)
def _instance(name: str, options_json: str) -> Verifier:
    cls = load_verifier(name)
    return cls(cls.Options.model_validate(json.loads(options_json)))


def named(name: str, verdict: Verdict) -> NamedVerdict:
    """The verdict under the name the job used, a rejection's reason as ``<name>:<code>`` whatever the
    plugin wrote.

    Reasons are filtered by verifier (the samples pages look verdicts up by that prefix), so a plugin
    that names itself otherwise, or gives a bare code, must not escape the filter.
    """
    reason = verdict.reason
    if reason is not None and not reason.startswith(f"{name}:"):
        reason = f"{name}:{reason.partition(':')[2] or reason}"
    return NamedVerdict(name, verdict.accepted, reason, verdict.details)


def _bounded(
    name: str, timeout_s: float, check: Callable[[], list[Verdict]], count: int
) -> list[NamedVerdict]:
    """``count`` verdicts of one verifier from ``check``, under its time bound, each with its share of
    the time taken; an overrun or an exception is a rejection of every candidate."""
    started = time.perf_counter()
    try:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            verdicts = check()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if len(verdicts) != count:
            raise ValueError(f"{len(verdicts)} verdicts for {count} samples")
        out = [named(name, v) for v in verdicts]
    except _OverranError:
        out = [_rejected(name, "timeout", seconds=timeout_s)] * count
    except Exception as exc:  # a plugin's bug must become a verdict, not a lost sample
        error = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]
        out = [_rejected(name, "error", error=error)] * count
    share = (time.perf_counter() - started) / max(count, 1)
    return [v._replace(seconds=share) for v in out]


def _run_one(spec: VerifierSpec, candidate: Candidate, default_timeout_s: float) -> NamedVerdict:
    def check() -> list[Verdict]:
        return [_instance(spec.name, json.dumps(spec.options, sort_keys=True)).verify(candidate)]

    return _bounded(spec.name, spec_timeout(spec, default_timeout_s), check, 1)[0]


def _run_group(
    spec: VerifierSpec, candidates: Sequence[Candidate], default_timeout_s: float
) -> list[NamedVerdict]:
    def check() -> list[Verdict]:
        verifier = _instance(spec.name, json.dumps(spec.options, sort_keys=True))
        return list(verifier.verify_group(candidates))  # type: ignore[attr-defined]

    return _bounded(spec.name, spec_timeout(spec, default_timeout_s), check, len(candidates))


def verify_requests(
    requests: Sequence[tuple[Sequence[VerifierSpec], Sequence[Candidate], bool]], timeout_s: float
) -> list[list[list[NamedVerdict]]]:
    """Every verifier of each request over each of its candidates, alone or (``group``) together;
    runs inside a pool process. Verdicts come back per candidate, one per verifier, in order."""
    results = []
    for specs, candidates, group in requests:
        if group:
            columns = [_run_group(spec, candidates, timeout_s) for spec in specs]
            results.append([list(row) for row in zip(*columns, strict=True)])
        else:
            results.append([[_run_one(spec, c, timeout_s) for spec in specs] for c in candidates])
    return results


def _preload() -> None:
    """Import every installed verifier in a new pool process (sympy and math-verify take seconds),
    so that a worker's first verification does not wait for them. A plugin that fails to import is
    left for its first verification, where the failure becomes that verifier's verdict."""
    for name in verifier_names():
        with contextlib.suppress(Exception):
            load_verifier(name)


def _ready() -> None:
    """A no-op that makes the pool start its processes (and preload) at once."""


def _kill(pool: ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public way to stop a hung worker before Python 3.14
    # (terminate_workers); shutdown() would wait for it forever.
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()


@dataclass
class _Request:
    """One ``verify`` call waiting for its verdicts."""

    specs: list[VerifierSpec]
    candidates: list[Candidate]
    deadline_s: float
    done: asyncio.Future[list[list[NamedVerdict]]]
    group: bool = False

    def settle(self, verdicts: list[list[NamedVerdict]]) -> None:
        if not self.done.done():  # its caller may have been cancelled meanwhile
            self.done.set_result(verdicts)


@dataclass
class _LoopState:
    """The requests of one event loop waiting for a process, and how many batches are out."""

    pending: list[_Request] = field(default_factory=list)
    running: int = 0
    linger: asyncio.Future[None] | None = None  # a batch waiting for more calls to join it
    more_coming: Callable[[], bool] | None = None  # the latest caller's: whether it expects more calls
    drains: set[asyncio.Task[None]] = field(default_factory=set)

    def may_grow(self) -> bool:
        """Whether a waiting batch has room, and calls that could fill it may still come."""
        room = sum(len(r.candidates) for r in self.pending) < MAX_BATCH_CANDIDATES
        return room and (self.more_coming is None or self.more_coming())

    def stop_lingering(self) -> None:
        if self.linger is not None and not self.linger.done():
            self.linger.set_result(None)

    def next_batch(self) -> list[_Request]:
        """The oldest waiting requests, up to MAX_BATCH_CANDIDATES candidates (at least one request)."""
        batch: list[_Request] = []
        size = 0
        while self.pending and (not batch or size + len(self.pending[0].candidates) <= MAX_BATCH_CANDIDATES):
            batch.append(self.pending.pop(0))
            size += len(batch[-1].candidates)
        return batch


class VerifierRunner:
    """Owns the process pool; ``verify`` is safe to await from many tasks at once.

    Calls go to the pool together, as one batch (up to ``MAX_BATCH_CANDIDATES`` candidates): those
    that arrive while every process is busy, and those that arrive within ``linger_s`` of a batch's
    first call. Handing a batch to the pool and back takes five hops between threads and processes;
    a worker verifying a task's four samples at a time spent more CPU on them than on the checks.
    A task's request slot is free while its samples are verified, so the wait costs the teacher
    nothing.
    """

    def __init__(
        self,
        processes: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        linger_s: float = BATCH_LINGER_S,
    ) -> None:
        self.processes = processes or len(os.sched_getaffinity(0)) or 1  # the cores this process may use
        self.timeout_s = timeout_s
        self.linger_s = linger_s
        self._pool = self._new_pool()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self.pools_replaced = 0
        self.batches = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker process runs threads (event loop, DB pool) that fork would copy.
        pool = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_preload
        )
        for _ in range(self.processes):  # start the processes now, not on the first task's clock
            pool.submit(_ready)
        return pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:
            _kill(broken)
            self._pool = self._new_pool()
            self.pools_replaced += 1

    async def verify(
        self,
        specs: Sequence[VerifierSpec],
        candidates: Sequence[Candidate],
        more_coming: Callable[[], bool] | None = None,
        group: bool = False,
    ) -> list[list[NamedVerdict]]:
        """Verdicts of every spec for every candidate, in order; with ``group``, each spec judges the
        candidates together (group verifiers).

        ``more_coming`` says whether the caller expects more calls soon; once it says no (a job's last
        replies), a batch is handed over at once rather than lingering for calls that will not come.
        """
        if not specs or not candidates:
            return [[] for _ in candidates]
        loop = asyncio.get_running_loop()
        per_spec = 1 if group else len(candidates)
        deadline = sum(spec_timeout(s, self.timeout_s) for s in specs) * per_spec
        request = _Request(list(specs), list(candidates), deadline, loop.create_future(), group)
        state = self._loops.setdefault(loop, _LoopState())
        state.pending.append(request)
        state.more_coming = more_coming
        if not state.may_grow():
            state.stop_lingering()
        # At most one batch per process is handed to the pool, so a batch never waits in the pool's
        # queue and its deadline measures its own run, not the batches ahead of it.
        if state.running < self.processes and state.linger is None:
            state.running += 1
            drain = asyncio.create_task(self._drain(state))
            state.drains.add(drain)
            drain.add_done_callback(state.drains.discard)
        return await request.done

    async def _drain(self, state: _LoopState) -> None:
        """Hand waiting requests to the pool, a batch at a time, until none is left."""
        try:
            if state.may_grow():
                loop = asyncio.get_running_loop()
                state.linger = loop.create_future()
                timer = loop.call_later(self.linger_s, state.stop_lingering)
                try:
                    await state.linger
                finally:
                    timer.cancel()
                    state.linger = None
            while batch := state.next_batch():
                await self._run(batch)
        finally:
            state.running -= 1

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        work = [(r.specs, r.candidates, r.group) for r in batch]
        deadline = sum(r.deadline_s for r in batch) + DEADLINE_SLACK_S
        for _ in range(2):
            pool = self._pool
            future = loop.run_in_executor(pool, verify_requests, work, self.timeout_s)
            try:
                results = await asyncio.wait_for(future, deadline)
            except TimeoutError:
                # A check hung where no signal reaches it. The pool goes; alone, each request of the
                # batch either finishes or is the one that hangs, and only that one times out.
                self._replace(pool)
                if len(batch) > 1:
                    for request in batch:
                        await self._run([request])
                    return
                (request,) = batch
                hung = _all(request.specs, request.candidates, "timeout", seconds=deadline, hung=True)
                request.settle(hung)
                return
            except BrokenProcessPool:
                # Another call's hang or a crashed process broke the pool: retry once on a new one.
                self._replace(pool)
                continue
            self.batches += 1
            for request, verdicts in zip(batch, results, strict=True):
                request.settle(verdicts)
            return
        for request in batch:
            request.settle(_all(request.specs, request.candidates, "error", error="verifier process crashed"))

    def close(self) -> None:
        _kill(self._pool)


def _all(
    specs: Sequence[VerifierSpec], candidates: Sequence[Candidate], code: str, **details: Any
) -> list[list[NamedVerdict]]:
    return [[_rejected(s.name, code, **details) for s in specs] for _ in candidates]


def _rejected(name: str, code: str, **details: Any) -> NamedVerdict:
    return NamedVerdict(name, False, f"{name}:{code}", details)

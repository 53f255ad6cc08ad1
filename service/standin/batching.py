"""A model of a continuous-batching engine (vLLM's scheduler, roughly), for the stand-in teacher.

Up to ``max_num_seqs`` sequences run at once; more wait in order. Every running sequence advances one
token per engine step, and a step takes longer the fuller the batch: ``token_s * (1 + slowdown * b /
max_num_seqs)`` for ``b`` running sequences. A sequence's work is its prefill (``ttft_s``) plus its
tokens. Rather than ticking per token, the engine keeps a virtual clock that runs at the batch's speed
and wakes only when a sequence reaches a mark (a streamed chunk, or its end) or one arrives, so
thousands of sequences cost little CPU. A stream closed early frees its slot at once, as vLLM frees a
sequence whose client went away.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineModel:
    max_num_seqs: int = 256
    ttft_s: float = 0.0
    token_s: float = 0.0
    slowdown: float = 0.0  # a full batch's step takes (1 + slowdown) times a lone sequence's


class _Sequence:
    """A sequence's place in the engine: admitted (with the virtual time it started) or waiting."""

    def __init__(self, admitted: asyncio.Future[None]) -> None:
        self.admitted = admitted
        self.start = 0.0


class BatchingEngine:
    """Runs sequences under the model: ``stream`` yields each mark's token count as it is reached,
    ``generate`` returns when a sequence is done."""

    def __init__(self, model: EngineModel) -> None:
        self.model = model
        self._virtual = 0.0  # seconds of work done by a sequence running since the start
        self._updated = time.monotonic()
        self._running: set[_Sequence] = set()
        self._waiting: deque[_Sequence] = deque()
        self._marks: list[tuple[float, int, asyncio.Future[None]]] = []  # (virtual time, order, wake)
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def _speed(self) -> float:
        return 1.0 / (1.0 + self.model.slowdown * len(self._running) / self.model.max_num_seqs)

    def _advance(self) -> None:
        now = time.monotonic()
        self._virtual += (now - self._updated) * self._speed()
        self._updated = now
        while self._marks and self._marks[0][0] <= self._virtual + 1e-9:
            _, _, wake = heapq.heappop(self._marks)
            if not wake.done():
                wake.set_result(None)
        while self._waiting and len(self._running) < self.model.max_num_seqs:
            sequence = self._waiting.popleft()
            if not sequence.admitted.done():  # a request whose client went away is dropped
                sequence.start = self._virtual
                self._running.add(sequence)
                sequence.admitted.set_result(None)

    async def _run(self) -> None:
        while True:
            self._advance()
            timeout = (self._marks[0][0] - self._virtual) / self._speed() if self._marks else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _reach(self, virtual: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._marks, (virtual, next(self._order), wake))
        self._wake.set()
        await wake

    def _leave(self, sequence: _Sequence) -> None:
        """Free the sequence's slot (done, or its client gone), the time so far counted at the old speed."""
        self._advance()
        self._running.discard(sequence)
        if not sequence.admitted.done():
            sequence.admitted.cancel()
        self._wake.set()

    async def stream(self, tokens: int, every: int) -> AsyncIterator[int]:
        """Wait for a slot and the prefill, then yield the tokens done every ``every`` tokens and at
        the end. The slot is freed at the last mark, or when the caller stops iterating."""
        marks = [*range(every, tokens, every), tokens] if every > 0 else [tokens]
        if self.model.ttft_s + self.model.token_s * tokens <= 0:
            for mark in marks:
                yield mark
            return
        if self._loop is None:
            self._loop = asyncio.create_task(self._run())
        sequence = _Sequence(asyncio.get_running_loop().create_future())
        self._waiting.append(sequence)
        self._wake.set()
        try:
            await sequence.admitted
            for mark in marks:
                await self._reach(sequence.start + self.model.ttft_s + self.model.token_s * mark)
                if mark == tokens:
                    self._leave(sequence)
                yield mark
        finally:
            if sequence in self._running or not sequence.admitted.done():
                self._leave(sequence)

    async def generate(self, tokens: int) -> None:
        """Wait for a slot, then for the sequence's prefill and its ``tokens`` steps."""
        async for _ in self.stream(tokens, 0):
            pass

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return sum(not s.admitted.done() for s in self._waiting)

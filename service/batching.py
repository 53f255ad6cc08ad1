"""A model of a continuous-batching engine (vLLM's scheduler, roughly), for the stand-in teacher.

Up to ``max_num_seqs`` sequences run at once; more wait in order. Every running sequence advances one
token per engine step, and a step takes longer the fuller the batch: ``token_s * (1 + slowdown * b /
max_num_seqs)`` for ``b`` running sequences. A sequence's work is its prefill (``ttft_s``) plus its
tokens. Rather than ticking per token, the engine keeps a virtual clock that runs at the batch's speed
and wakes only when a sequence finishes or arrives, so thousands of sequences cost little CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineModel:
    max_num_seqs: int = 256
    ttft_s: float = 0.0
    token_s: float = 0.0
    slowdown: float = 0.0  # a full batch's step takes (1 + slowdown) times a lone sequence's


class BatchingEngine:
    """Runs sequences of given work under the model; ``generate`` returns when one is done."""

    def __init__(self, model: EngineModel) -> None:
        self.model = model
        self._virtual = 0.0  # seconds of work done by a sequence running since the start
        self._updated = time.monotonic()
        self._running: list[tuple[float, int, asyncio.Future[None]]] = []
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def _speed(self) -> float:
        return 1.0 / (1.0 + self.model.slowdown * len(self._running) / self.model.max_num_seqs)

    def _advance(self) -> None:
        now = time.monotonic()
        self._virtual += (now - self._updated) * self._speed()
        self._updated = now
        while self._running and self._running[0][0] <= self._virtual + 1e-9:
            _, _, done = heapq.heappop(self._running)
            if not done.done():
                done.set_result(None)
        while self._waiting and len(self._running) < self.model.max_num_seqs:
            work, done = self._waiting.popleft()
            if not done.done():  # a request whose client went away is dropped
                heapq.heappush(self._running, (self._virtual + work, next(self._order), done))

    async def _run(self) -> None:
        while True:
            self._advance()
            timeout = (self._running[0][0] - self._virtual) / self._speed() if self._running else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def generate(self, tokens: int) -> None:
        """Wait for a slot, then for the sequence's prefill and its ``tokens`` steps."""
        work = self.model.ttft_s + self.model.token_s * tokens
        if work <= 0:
            return
        if self._loop is None:
            self._loop = asyncio.create_task(self._run())
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((work, done))
        self._wake.set()
        await done

    @property
    def running(self) -> int:
        return len(self._running)

"""Candidates made the way a worker makes them: the teacher's reply through ``workers.process.to_samples``
(its split of think part and answer included), so that verifier tests take the path a job takes."""

from __future__ import annotations

from typing import Any

from service.database.queue import ClaimedTask
from verifiers.base import Candidate
from workers.process import to_samples
from workers.teacher import ChatResult, Choice


def as_worker_sees(
    content: str,
    *,
    reasoning: str | None = None,
    prompt: str = "Solve the problem.",
    reference: str | None = None,
    tests: list[dict[str, Any]] | None = None,
) -> Candidate:
    """The candidate for one reply (``reasoning``: a server's separate reasoning field)."""
    messages = [{"role": "user", "content": prompt}]
    task = ClaimedTask(1, "job", "p0", prompt, None, reference, tests, 1)
    reply = ChatResult([Choice(0, content, reasoning, "stop")], prompt_tokens=10, completion_tokens=100)
    _, [candidate] = to_samples(task, messages, reply)
    return candidate

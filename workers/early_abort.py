"""Early abort: a job's partial checks watch each sample while the teacher streams it, and the first
rejection ends the stream, so that the teacher stops spending tokens on a sample already lost.

The checks are the ``verify_partial`` of the job's sample verifiers (``verifiers/base.py``), except
those the job turned off (``abort_early: false`` on the verifier) and those whose rejections a
fallback may overrule. They run in the worker's event loop every so many tokens (below), on the text
so far; one that raises is ignored, one that spends over 50 ms of CPU three times is turned off for
this worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.reasoning import split_completion
from verifiers.base import Candidate, NamedVerdict
from verifiers.registry import load_verifier
from verifiers.runner import named

log = logging.getLogger(__name__)

# Checks look at the text so far, so their cost grows with it: they run every 64 tokens at first, then
# every quarter of the tokens so far, at most every 512, which keeps their work a few times the
# sample's length while a loop is still stopped within a few hundred tokens.
CHECK_EVERY_TOKENS = 64
CHECK_AT_MOST_EVERY = 512
SLOW_CHECK_S = 0.05  # of CPU time (a busy machine's waits do not count), in a call
SLOW_STRIKES = 3  # slow calls before a check is turned off
_slow_calls: dict[str, int] = {}  # per verifier, its partial check's slow calls in this worker


@dataclass(frozen=True)
class PartialChecks:
    """The job's verifiers that can reject a sample early, under the job's names for them."""

    checks: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, verifiers: Sequence[dict[str, Any]]) -> PartialChecks | None:
        """The checks of a job's ``verifiers``; None when none can abort."""
        overruled = {r.partition(":")[0] for v in verifiers for r in v.get("fallback_for") or ()}
        checks = []
        for entry in verifiers:
            verifier_cls = load_verifier(entry["name"])
            if not hasattr(verifier_cls, "verify_partial") or entry["name"] in overruled:
                continue
            if entry.get("abort_early", True):
                verifier = verifier_cls(verifier_cls.Options.model_validate(entry.get("options") or {}))
                checks.append((entry["name"], verifier))
        return cls(tuple(checks)) if checks else None

    def watch(self, sample: Candidate) -> StreamWatch:
        return StreamWatch(self, sample)


class StreamWatch:
    """One sample's stream as it comes: its text so far, its tokens, and the verdict that ended it."""

    def __init__(self, checks: PartialChecks, sample: Candidate) -> None:
        self.checks = checks
        self.sample = sample  # the task's side of the candidate: messages, reference, tests...
        self.restart()

    def restart(self) -> None:
        """Forget what came: the request is sent again."""
        self.content: list[str] = []
        self.reasoning: list[str] | None = None
        self.tokens = 0
        self.verdict: NamedVerdict | None = None
        self._next_check = CHECK_EVERY_TOKENS  # tokens at which the checks run next
        self._seen = 0

    def add(self, content: str | None, reasoning: str | None, tokens: int) -> NamedVerdict | None:
        """Take a chunk (``tokens``: the sample's tokens so far); the rejection that ends the stream,
        if the checks found one now."""
        if content:
            self.content.append(content)
        if reasoning:
            if self.reasoning is None:
                self.reasoning = []
            self.reasoning.append(reasoning)
        self.tokens = tokens
        if tokens >= self._next_check:
            gap = max(CHECK_EVERY_TOKENS, min(CHECK_AT_MOST_EVERY, tokens // 4))
            self._next_check = tokens + gap
            self.verdict = self._check()
        return self.verdict

    @property
    def text(self) -> tuple[str | None, str | None]:
        """The content and the reasoning so far (None where none came), as a reply carries them."""
        content = "".join(self.content) if self.content or self.reasoning is None else None
        return content, "".join(self.reasoning) if self.reasoning is not None else None

    def _check(self) -> NamedVerdict | None:
        split = split_completion(*self.text)
        partial = replace(
            self.sample,
            completion=split.completion,
            think=split.think,
            answer=split.answer,
            finish_reason=None,
            completion_tokens=self.tokens,
        )
        seen, self._seen = self._seen, len(split.completion)
        for name, verifier in self.checks.checks:
            if _slow_calls.get(name, 0) >= SLOW_STRIKES:
                continue
            started = time.thread_time()
            try:
                verdict = verifier.verify_partial(partial, seen)
            except Exception:  # only "go on": the full check decides
                log.exception("partial check of %s failed; the sample goes on", name)
                verdict = None
            if time.thread_time() - started > SLOW_CHECK_S:
                _slow_calls[name] = _slow_calls.get(name, 0) + 1
                if _slow_calls[name] == SLOW_STRIKES:
                    log.warning("partial check of %s is slow: off here", name)
            if verdict is not None and not verdict.accepted:
                out = named(name, verdict)
                return out._replace(details={**out.details, "aborted_at_token": self.tokens})
        return None

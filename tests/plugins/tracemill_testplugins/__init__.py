"""Verifiers a third party might ship: two useful ones (the second scores against the prompt's own
metadata, as reasoning-gym's scorers do), and four that misbehave in the ways the runner must survive."""

from __future__ import annotations

import os
import signal
import time
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from verifiers.answers import extract_answer
from verifiers.base import Candidate, Verdict


class KeywordOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    word: str


class KeywordVerifier:
    """Accepts answers that mention a given word."""

    name: ClassVar[str] = "keyword"
    Options: ClassVar[type[BaseModel]] = KeywordOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, KeywordOptions)
        self.word = options.word

    def verify(self, candidate: Candidate) -> Verdict:
        if self.word.lower() in (candidate.answer or "").lower():
            return Verdict.accept(word=self.word)
        return Verdict.reject(self.name, "missing_word", word=self.word)


class TargetOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str = "target"


class TargetVerifier:
    """Accepts a final boxed number equal to the prompt's ``metadata[field]``: a dataset whose
    generator knows each answer (reasoning-gym's ``entry["metadata"]``) but ships no reference column.
    It sees which prompt and which of its samples it judges, and says so in its details."""

    name: ClassVar[str] = "target"
    Options: ClassVar[type[BaseModel]] = TargetOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, TargetOptions)
        self.field = options.field

    def verify(self, candidate: Candidate) -> Verdict:
        seen = {"prompt_id": candidate.prompt_id, "sample_index": candidate.sample_index}
        target = (candidate.metadata or {}).get(self.field)
        if target is None:
            return Verdict.reject(self.name, "no_target", **seen)
        found = extract_answer(candidate.answer or "", "boxed")
        if found is None:
            return Verdict.reject(self.name, "no_answer", **seen)
        try:
            right = float(found.text) == float(target)
        except ValueError:
            right = False
        return Verdict.accept(**seen) if right else Verdict.reject(self.name, "wrong", target=target, **seen)


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SleepOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seconds: float = 60.0


class CrashingVerifier:
    name: ClassVar[str] = "crashing"
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, options: BaseModel) -> None:
        pass

    def verify(self, candidate: Candidate) -> Verdict:
        raise RuntimeError("plugin bug")


class SleepyVerifier:
    """Hangs in Python code, where the runner's alarm reaches it."""

    name: ClassVar[str] = "sleepy"
    Options: ClassVar[type[BaseModel]] = SleepOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, SleepOptions)
        self.seconds = options.seconds

    def verify(self, candidate: Candidate) -> Verdict:
        time.sleep(self.seconds)
        return Verdict.accept()


class StubbornVerifier(SleepyVerifier):
    """Blocks the alarm signal, as a hang inside C code would: only killing the process ends it."""

    name: ClassVar[str] = "stubborn"

    def verify(self, candidate: Candidate) -> Verdict:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(self.seconds)
        return Verdict.accept()


class ExitingVerifier:
    """Kills its own process, breaking the pool."""

    name: ClassVar[str] = "exiting"
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, options: BaseModel) -> None:
        pass

    def verify(self, candidate: Candidate) -> Verdict:
        os._exit(3)

"""Verifiers a third party might ship: one useful, four that misbehave in the ways the runner must survive."""

from __future__ import annotations

import os
import signal
import time
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

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

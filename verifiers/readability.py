"""Readability: no over-long paragraphs, and no code fences in a task that is not about code."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from verifiers.base import Candidate, Verdict

NAME = "readability"
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class ReadabilityOptions(BaseModel):
    """``allow_code``: None means allowed exactly when the task carries tests (a code task)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_paragraph_chars: int = Field(default=1500, ge=1)
    allow_code: bool | None = None


class ReadabilityVerifier:
    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = ReadabilityOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, ReadabilityOptions)
        self.options = options

    def verify(self, candidate: Candidate) -> Verdict:
        paragraphs = _PARAGRAPH_BREAK.split(candidate.completion)
        longest = max((len(p.strip()) for p in paragraphs), default=0)
        if longest > self.options.max_paragraph_chars:
            return Verdict.reject(
                NAME, "long_paragraph", chars=longest, limit=self.options.max_paragraph_chars
            )
        allow_code = self.options.allow_code if self.options.allow_code is not None else bool(candidate.tests)
        if not allow_code and "```" in candidate.completion:
            return Verdict.reject(NAME, "code_block", fences=candidate.completion.count("```"))
        return Verdict.accept(longest_paragraph=longest, paragraphs=len(paragraphs))

"""Length bounds on the whole completion and on its think part, and no truncated completions.

Token counts are the teacher's (``usage``); a think part's tokens are estimated from its share of
the completion's characters, since servers report usage per completion only.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from verifiers.base import Candidate, Verdict

NAME = "length"


class LengthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reject_truncated: bool = True
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=1)
    min_think_tokens: int | None = Field(default=None, ge=0)
    max_think_tokens: int | None = Field(default=None, ge=1)
    min_think_chars: int | None = Field(default=None, ge=0)
    max_think_chars: int | None = Field(default=None, ge=1)


def _outside(value: int, low: int | None, high: int | None) -> str | None:
    if low is not None and value < low:
        return "too_short"
    if high is not None and value > high:
        return "too_long"
    return None


class LengthVerifier:
    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = LengthOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, LengthOptions)
        self.options = options

    def verify(self, candidate: Candidate) -> Verdict:
        o = self.options
        chars, tokens = len(candidate.completion), candidate.completion_tokens
        think_chars = len(candidate.think or "")
        think_tokens = round(tokens * think_chars / chars) if chars else 0
        details = {
            "tokens": tokens,
            "chars": chars,
            "think_tokens_est": think_tokens,
            "think_chars": think_chars,
        }
        if o.reject_truncated and candidate.finish_reason == "length":
            return Verdict.reject(NAME, "truncated", **details)
        checks = (
            ("", tokens, o.min_tokens, o.max_tokens),
            ("", chars, o.min_chars, o.max_chars),
            ("think_", think_tokens, o.min_think_tokens, o.max_think_tokens),
            ("think_", think_chars, o.min_think_chars, o.max_think_chars),
        )
        for prefix, value, low, high in checks:
            code = _outside(value, low, high)
            if code:
                return Verdict.reject(NAME, prefix + code, **details)
        return Verdict.accept(**details)

    def verify_partial(self, candidate: Candidate, seen: int) -> Verdict | None:
        """Past a maximum of tokens, characters or think characters: counts that only grow. (A sample
        that would have run into the request's ``max_tokens`` gets ``too_long`` here, where the full
        check, seeing it cut off, would say ``truncated``.)"""
        o = self.options
        think_chars = len(candidate.think or "")
        if candidate.think is not None and "</think>" not in candidate.completion:
            think_chars -= len("</think>") - 1  # the text may end in a closing tag's first characters
        checks = (
            ("", candidate.completion_tokens, o.max_tokens),
            ("", len(candidate.completion), o.max_chars),
            ("think_", think_chars, o.max_think_chars),
        )
        for prefix, value, high in checks:
            if high is not None and value > high:
                return Verdict.reject(
                    NAME,
                    prefix + "too_long",
                    tokens=candidate.completion_tokens,
                    chars=len(candidate.completion),
                )
        return None

"""Repetition: reject a trace stuck in a loop, as R1-style models get when they repeat a paragraph
until ``max_tokens``.

Two signs, each counted inside a sliding window so that a phrase a long trace uses now and then does
not add up: one run of ``ngram`` words seen ``max_repeats`` times within ``window`` words (a repeated
sentence or paragraph), or one line (of ``min_line_chars`` or more) seen ``line_repeats`` times within
``line_window`` lines (a repeated short line, "Wait, let me check." again and again). A window that
holds a loop in part of a text holds it in the whole text, which is what lets the check run while the
teacher streams (``verify_partial``) without ever rejecting what the full check would accept.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from verifiers.base import Candidate, Verdict

NAME = "repetition"
SAMPLE_CHARS = 80
SAMPLE_TEXT = 4000  # characters of recent text from which a partial check estimates words per character


class RepetitionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ngram: int = Field(default=12, ge=3, description="Words in a run that counts as repeated.")
    max_repeats: int = Field(
        default=4, ge=2, description="Times a run may appear in a window before it is a loop."
    )
    window: int = Field(default=1000, ge=10, description="Words in the sliding window for runs.")
    line_repeats: int = Field(default=6, ge=2, description="Times a line may appear in a line window.")
    line_window: int = Field(default=100, ge=2, description="Lines in the sliding window for lines.")
    min_line_chars: int = Field(default=12, ge=1, description="Shorter lines ('\\\\]', '---') never count.")


def _first_loop(items: Sequence[tuple[int, Hashable]], repeats: int, window: int) -> int | None:
    """The index into ``items`` (position, item) at which some item has been seen ``repeats`` times
    within ``window`` positions."""
    seen: defaultdict[Hashable, deque[int]] = defaultdict(deque)
    for index, (position, item) in enumerate(items):
        places = seen[item]
        places.append(position)
        while places[0] <= position - window:
            places.popleft()
        if len(places) >= repeats:
            return index
    return None


class RepetitionVerifier:
    """Rejects a completion that repeats a run of words or a line past the options' limits."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = RepetitionOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, RepetitionOptions)
        self.options = options

    def verify(self, candidate: Candidate) -> Verdict:
        return self._check(candidate.completion, whole=True) or Verdict.accept()

    def verify_partial(self, candidate: Candidate, seen: int) -> Verdict | None:
        """The same windows over the recent text: the words and lines it surely has (a last word or
        line may still grow), from a point a window before what earlier calls saw."""
        text = candidate.completion
        start = max(0, seen - self._lookback_chars(text[max(0, seen - SAMPLE_TEXT) : seen]))
        start = text.find("\n", start) + 1 if start else 0  # from a line's start: whole words and lines
        return self._check(text[start:], whole=False)

    def _lookback_chars(self, recent: str) -> int:
        """Characters enough to hold a window of words and one of lines, at ``recent``'s density."""
        o = self.options
        chars_per_word = len(recent) / max(1, len(recent.split()))
        chars_per_line = len(recent) / max(1, recent.count("\n"))
        return int(1.5 * max(chars_per_word * (o.window + o.ngram), chars_per_line * o.line_window)) + 1

    def _check(self, text: str, whole: bool) -> Verdict | None:
        o = self.options
        words = text.split()
        texts = text.split("\n")
        if not whole:  # a last word or line not yet ended may still grow
            if words and not text[-1:].isspace():
                words.pop()
            texts.pop()
        grams = [(i, " ".join(words[i : i + o.ngram])) for i in range(len(words) - o.ngram + 1)]
        lines = [(i, line.strip()) for i, line in enumerate(texts) if len(line.strip()) >= o.min_line_chars]
        checks: tuple[tuple[str, list[tuple[int, str]], int, int], ...] = (
            ("ngram", grams, o.max_repeats, o.window - o.ngram + 1),
            ("line", lines, o.line_repeats, o.line_window),
        )
        for kind, items, repeats, window in checks:
            at = _first_loop(items, repeats, window)
            if at is not None:
                return Verdict.reject(
                    NAME, "loop", kind=kind, repeats=repeats, run=items[at][1][:SAMPLE_CHARS]
                )
        return None

"""Decontamination: drop training prompts that share a word n-gram with an evaluation set (open-r1's
rule, n = 8 by default)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = re.compile(r"\w+")
DEFAULT_N = 8


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class Decontaminator:
    """Holds the n-grams of the evaluation prompts; ``contaminated`` tells whether a prompt shares one."""

    def __init__(self, eval_texts: Iterable[str], n: int = DEFAULT_N) -> None:
        self.n = n
        self.grams: set[tuple[str, ...]] = set()
        for text in eval_texts:
            self.grams |= ngrams(text, n)

    def contaminated(self, text: str) -> bool:
        if not self.grams:
            return False
        words = _WORD.findall(text.lower())
        return any(tuple(words[i : i + self.n]) in self.grams for i in range(len(words) - self.n + 1))

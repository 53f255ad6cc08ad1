"""Decontamination: drop training prompts that share a word n-gram with an evaluation set (open-r1's
rule, n = 8 by default), and say what matched.

A procedural task's prompts share a fixed instruction ("Your task is to sort words in ascending or
descending order…"), and an evaluation set of the same task holds it too, so the bare rule removes
every prompt of the task though no problem is in common. Such *template* n-grams are found first: an
evaluation n-gram in more than ``template_share`` of one source's training prompts (and in at least
``template_min_rows`` of them) is a template, reported and not matched; nor is an n-gram that is mostly
template (its words where the prompt's templates lie), since a template and the first word after it
("…return them as a comma-separated list: inform") are no shared problem. A match keeps at least
3 of its 8 words (3/8 of n) outside the templates.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\w+")
DEFAULT_N = 8
DEFAULT_TEMPLATE_SHARE = 0.1
DEFAULT_TEMPLATE_MIN_ROWS = 10
TOP_NGRAMS = 5

Gram = tuple[str, ...]


def _grams(words: list[str], n: int) -> list[Gram]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def ngrams(text: str, n: int) -> set[Gram]:
    return set(_grams(_WORD.findall(text.lower()), n))


@dataclass
class SourceCount:
    """One source's rows, those removed, and the n-grams that removed them."""

    rows: int = 0
    removed: int = 0
    matched: Counter[Gram] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        top = [{"ngram": " ".join(g), "rows": c} for g, c in self.matched.most_common(TOP_NGRAMS)]
        return {"rows": self.rows, "removed": self.removed, "top_ngrams": top}


class Decontaminator:
    """Holds the evaluation prompts' n-grams; ``learn_templates`` sees the training prompts first,
    ``matches`` then names the n-grams a prompt shares with the evaluation sets, templates aside."""

    def __init__(
        self,
        eval_texts: Iterable[str],
        n: int = DEFAULT_N,
        template_share: float = DEFAULT_TEMPLATE_SHARE,
        template_min_rows: int = DEFAULT_TEMPLATE_MIN_ROWS,
    ) -> None:
        self.n, self.template_share, self.template_min_rows = n, template_share, template_min_rows
        self.grams: set[Gram] = set()
        for text in eval_texts:
            self.grams |= ngrams(text, n)
        self.templates: dict[Gram, int] = {}  # a template n-gram: the most rows of one source holding it
        self.sources: defaultdict[str, SourceCount] = defaultdict(SourceCount)

    def _shared(self, text: str) -> set[Gram]:
        return ngrams(text, self.n) & self.grams if self.grams else set()

    def learn_templates(self, prompts: Iterable[tuple[str, str]]) -> None:
        """Count, per source, the training prompts (``(source, text)``) holding each evaluation n-gram."""
        if not self.grams:
            return
        rows: Counter[str] = Counter()
        held: defaultdict[str, Counter[Gram]] = defaultdict(Counter)
        for source, text in prompts:
            rows[source] += 1
            held[source].update(self._shared(text))
        for source, counts in held.items():
            for gram, count in counts.items():
                if count >= self.template_min_rows and count > self.template_share * rows[source]:
                    self.templates[gram] = max(count, self.templates.get(gram, 0))

    def matches(self, text: str) -> set[Gram]:
        if not self.grams:  # no evaluation set: every export row passes here
            return set()
        words = _WORD.findall(text.lower())
        n = self.n
        grams = _grams(words, n)
        if not self.templates:
            return {g for g in grams if g in self.grams}
        covered = bytearray(len(words))
        for i, gram in enumerate(grams):
            if gram in self.templates:
                covered[i : i + n] = b"\x01" * n
        free = max(1, 3 * n // 8)
        return {
            gram
            for i, gram in enumerate(grams)
            if gram in self.grams and gram not in self.templates and n - sum(covered[i : i + n]) >= free
        }

    def contaminated(self, text: str, source: str = "") -> bool:
        """Whether the prompt shares a (non-template) n-gram; counted under ``source``."""
        found = self.matches(text)
        count = self.sources[source]
        count.rows += 1
        if found:
            count.removed += 1
            count.matched.update(found)
        return bool(found)

    def report(self) -> dict[str, object]:
        """Per source: rows, removed, the most frequent matching n-grams; and the templates ignored."""
        templates = sorted(self.templates.items(), key=lambda item: -item[1])[:TOP_NGRAMS]
        return {
            "sources": {s: c.as_dict() for s, c in sorted(self.sources.items())},
            "templates_ignored": len(self.templates),
            "top_templates": [{"ngram": " ".join(g), "rows": c} for g, c in templates],
        }


def heavy_removals(found: dict[str, Any], share: float) -> list[str]:
    """A warning for each task that decontamination took more than ``share`` of (from ``report()``)."""
    warnings = []
    for task, count in found.get("sources", {}).items():
        if count["rows"] and count["removed"] > share * count["rows"]:
            top = count["top_ngrams"][0]["ngram"] if count["top_ngrams"] else ""
            warnings.append(
                f"decontamination removed {count['removed']} of {count['rows']} rows of {task} "
                f"({count['removed'] / count['rows']:.0%}); the n-gram matched most: “{top}”. If that is a "
                "shared instruction rather than a problem, lower --template-share or --template-min-rows"
            )
    return warnings

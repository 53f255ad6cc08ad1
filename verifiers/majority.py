"""Majority vote over a prompt's samples, for prompts without a reference (as OpenThoughts' maintainers
suggest for their unlabelled releases): the samples whose final answer is the most common one are kept.

Answers are grouped by meaning, not by spelling: ``1/2``, ``0.5`` and ``\\frac12`` are one class,
with the same equivalence the ``math`` verifier uses against a reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from verifiers.answers import ExtractMode, extract_answer
from verifiers.base import DETAIL_CHARS, Candidate, Verdict, VerifierKind
from verifiers.math_answer import MathOptions, MathVerifier, answer_part, normalise

NAME = "majority"


class MajorityOptions(BaseModel):
    """The largest class wins when it holds ``min_share`` of the answers and ``min_votes`` samples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_share: float = Field(default=0.5, gt=0, le=1, description="Share of the answers the winner needs.")
    min_votes: int = Field(default=2, ge=1, description="Samples the winning answer needs.")
    extract: ExtractMode = "boxed"
    timeout_s: float = Field(default=20.0, gt=0, le=600, description="Bounds the vote of one prompt.")


def answer_classes(answers: Sequence[str | None], same: MathVerifier) -> list[int | None]:
    """Each answer's class: the index of the first answer it equals (None for no answer). Spellings
    that normalise alike are compared once."""
    representatives: list[tuple[str, int]] = []  # (normalised text, class) of each class's first answer
    known: dict[str, int] = {}
    classes: list[int | None] = []
    for index, answer in enumerate(answers):
        if answer is None:
            classes.append(None)
            continue
        key = normalise(answer)
        if key not in known:
            known[key] = next(
                (cls for text, cls in representatives if same.equal(text, answer)),
                index,
            )
            if known[key] == index:
                representatives.append((answer, index))
        classes.append(known[key])
    return classes


class MajorityVerifier:
    """Accepts the samples whose answer is the prompt's clear majority; its details record the class
    sizes and the winning answer (which an export can carry as a pseudo-reference)."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = MajorityOptions
    kind: ClassVar[VerifierKind] = "group"

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, MajorityOptions)
        self.options = options
        self.same = MathVerifier(MathOptions(extract=options.extract))

    def verify_group(self, candidates: Sequence[Candidate]) -> list[Verdict]:
        found = [
            extract_answer(answer_part(c), self.options.extract) if c.answer else None for c in candidates
        ]
        answers = [None if f is None else ", ".join(f.boxes) if f.boxes else f.text for f in found]
        classes = answer_classes(answers, self.same)
        sizes: dict[int, int] = {}
        for cls in classes:
            if cls is not None:
                sizes[cls] = sizes.get(cls, 0) + 1
        voted = sum(sizes.values())
        ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
        summary = {
            "votes": voted,
            "classes": [{"answer": str(answers[cls])[:DETAIL_CHARS], "votes": n} for cls, n in ranked],
        }
        winner = ranked[0][0] if ranked else None
        tied = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
        if (
            winner is None
            or tied
            or sizes[winner] < self.options.min_votes
            or sizes[winner] / voted < self.options.min_share
        ):
            return [
                Verdict.reject(NAME, "no_answer" if cls is None else "no_majority", **summary)
                for cls in classes
            ]
        summary["answer"] = str(answers[winner])[:DETAIL_CHARS]
        summary["share"] = round(sizes[winner] / voted, 4)
        return [
            Verdict.accept(**summary)
            if cls == winner
            else Verdict.reject(NAME, "no_answer" if cls is None else "minority_answer", **summary)
            for cls in classes
        ]

"""Math answer equivalence: the final answer against the reference, with math-verify underneath.

Fast paths come before sympy: an identical normalised string is a match, and two plain numbers
(integers, decimals, fractions) are compared exactly, so only real expressions reach math-verify.
Each reference is parsed once per process (a prompt's ``n`` samples share it). math-verify's own
timeouts use SIGALRM and would fight the runner's, so they are off here: the runner bounds every call
with this verifier's ``timeout_s``, and an overrun is ``math:timeout``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from verifiers.answers import ExtractMode, extract_answer
from verifiers.base import DETAIL_CHARS, Candidate, Verdict

NAME = "math"
_NOISE = re.compile(r"\\[,;:! ]|\\left|\\right|\\displaystyle|\s+")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
_FRACTION = re.compile(r"^([-+]?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$|^([-+]?\d+)/(\d+)$")


class MathOptions(BaseModel):
    """``timeout_s`` bounds each comparison (sympy can hang); ``float_rounding`` is the number of
    decimals to which a decimal answer must agree with an exact one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(default=5.0, gt=0, le=120)
    float_rounding: int = Field(default=6, ge=0, le=15)
    extract: ExtractMode = Field(
        default="boxed",
        description="boxed: a box, an <answer> block or an answer phrase; any: else also the last LaTeX "
        "expression or number (for datasets whose answers were never boxed).",
    )


def normalise(text: str) -> str:
    """Spacing and sizing commands removed, so that equal typings compare equal."""
    return _NOISE.sub("", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").rstrip(".")


def as_number(text: str) -> Fraction | None:
    """A plain number (``3``, ``-0.25``, ``7/3``, ``\\frac{7}{3}``) as an exact fraction; else None."""
    text = normalise(text)
    if _NUMBER.match(text):
        return Fraction(text)
    match = _FRACTION.match(text)
    if match:
        sign, num, den = (
            (match.group(1), match.group(2), match.group(3))
            if match.group(2)
            else ("", match.group(4), match.group(5))
        )
        if int(den) != 0:
            value = Fraction(int(num), int(den))
            return -value if sign == "-" else value
    return None


def _numbers_agree(reference: Fraction, answer: Fraction, answer_text: str, rounding: int) -> bool:
    if reference == answer:
        return True
    if "." not in answer_text:  # an exact answer must be exactly right
        return False
    return round(float(reference), rounding) == round(float(answer), rounding)


_DELIMITER = re.compile(r"(?<!\\)\$")
_SET_BRACES = re.compile(r"^\\\{(.*)\\\}$|^[(\[](.*)[)\]]$", re.DOTALL)


def answer_part(candidate: Candidate) -> str:
    """What follows the reasoning, its ``<answer>`` tags kept: the worker's split has taken them off
    ``candidate.answer``, and R1's template puts the bare answer between them."""
    end = candidate.completion.find("</think>")
    if end >= 0:
        return candidate.completion[end + len("</think>") :]
    return candidate.completion if "<answer>" in candidate.completion else candidate.answer or ""


def _parts(reference: str) -> list[str]:
    """A reference's top-level comma-separated parts (of a set, tuple or list of answers)."""
    text = normalise(reference)
    inner = _SET_BRACES.match(text)
    if inner:
        text = inner.group(1) if inner.group(1) is not None else inner.group(2)
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _latex(text: str) -> str:
    """Wrap bare LaTeX in ``$…$`` for math-verify's extractor (an escaped ``\\$`` is a dollar sign)."""
    return text if _DELIMITER.search(text) or "\\boxed" in text else f"${text}$"


@lru_cache(maxsize=8192)
def _parse(text: str) -> list[Any]:
    from math_verify import parse

    parsed: list[Any] = parse(_latex(text), parsing_timeout=None)
    return parsed


class MathVerifier:
    """Accepts a sample whose final answer equals the prompt's reference."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = MathOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, MathOptions)
        self.options = options

    def verify(self, candidate: Candidate) -> Verdict:
        if not candidate.reference:
            return Verdict.reject(NAME, "no_reference", looked_for="the prompt's reference answer")
        if candidate.answer is None:
            return Verdict.reject(NAME, "no_answer", looked_for="an answer part (text after </think>)")
        found = extract_answer(answer_part(candidate), self.options.extract)
        if found is None:
            looked_for = "a \\boxed{…} or an answer phrase" + (
                " or a number" if self.options.extract == "any" else ""
            )
            return Verdict.reject(
                NAME, "no_answer", looked_for=looked_for, answer=candidate.answer[-DETAIL_CHARS:]
            )
        details = {"extracted": found.text[:DETAIL_CHARS], "reference": candidate.reference[:DETAIL_CHARS]}
        if found.boxes:
            return self._several(candidate.reference, found.boxes, details)
        return self._compare(candidate.reference, found.text, details)

    def equal(self, reference: str, extracted: str) -> bool:
        """Whether an extracted answer means the reference (exactly, as a number, or symbolically)."""
        return self._compare(reference, extracted, {}).accepted

    def _several(self, reference: str, boxes: tuple[str, ...], details: dict[str, Any]) -> Verdict:
        """Different boxes are one answer's parts when together they are the reference; else a hedge
        ("10, or possibly 11"), which is never a right answer even when one box is."""
        details = {**details, "extracted": ", ".join(boxes)[:DETAIL_CHARS], "boxes": len(boxes)}
        together = self._compare(reference, ", ".join(boxes), details)
        if together.accepted or len(_parts(reference)) > 1:
            return together
        return Verdict.reject(NAME, "ambiguous_answer", **details)

    def _compare(self, reference: str, extracted: str, details: dict[str, Any]) -> Verdict:
        if normalise(reference) == normalise(extracted):
            return Verdict.accept(path="exact", **details)
        gold_number, answer_number = as_number(reference), as_number(extracted)
        if gold_number is not None and answer_number is not None:
            if _numbers_agree(gold_number, answer_number, extracted, self.options.float_rounding):
                return Verdict.accept(path="numeric", **details)
            return Verdict.reject(NAME, "wrong_answer", path="numeric", **details)
        from math_verify import verify

        gold = _parse(reference)
        if not gold:
            return Verdict.reject(NAME, "unparseable_reference", **details)
        answer = _parse(extracted)
        if not answer:
            return Verdict.reject(NAME, "unparseable_answer", **details)
        equal = verify(gold, answer, float_rounding=self.options.float_rounding, timeout_seconds=None)
        if equal:
            return Verdict.accept(path="symbolic", **details)
        return Verdict.reject(NAME, "wrong_answer", path="symbolic", **details)

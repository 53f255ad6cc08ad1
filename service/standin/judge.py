"""The stand-in's judge mode: asked a question in the judge verifier's shape (``<problem>``,
``<reference>``, ``<candidate>``), it compares the candidate's final answer with the reference, or
without one with the problem's arithmetic worked out, and answers as asked: ``[[YES]]``/``[[NO]]``
or a JSON object. Deterministic, like the rest of the stand-in, and on purpose blind to the
verifiers' own parsing (a stand-in judge that used it would agree with ``math`` by construction): it
reads the stand-in's own plain forms, the last ``\\boxed{…}`` or else the last number."""

from __future__ import annotations

import json
import re
from fractions import Fraction

from service.standin.text import show_number, solve

_SECTION = re.compile(r"<(problem|reference|candidate)>\n?(.*?)\n?</\1>", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_LAST_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:/\d+)?")


def is_judge_question(prompt: str) -> bool:
    return "<candidate>" in prompt and "</candidate>" in prompt


def _final(answer: str) -> str | None:
    boxes = _BOXED.findall(answer)
    if boxes:
        return str(boxes[-1]).strip()
    numbers = _LAST_NUMBER.findall(answer)
    return numbers[-1] if numbers else None


def _number(text: str) -> Fraction | None:
    try:
        return Fraction(text.strip().strip("$").replace(",", "").replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _same(expected: str, given: str) -> bool:
    left, right = _number(expected), _number(given)
    if left is not None and right is not None:
        return left == right
    return expected.strip() == given.strip()


def judge_reply(question: str) -> str:
    """The stand-in judge's reply to a question."""
    sections = {name: text.strip() for name, text in _SECTION.findall(question)}
    given = _final(sections.get("candidate", ""))
    expected = sections.get("reference") or None
    if expected is None:
        solved = solve(sections.get("problem", ""))
        expected = None if solved is None else show_number(solved[1])
    if expected is None or given is None:
        correct = False
        reasoning = "I cannot find a final answer to check." if given is None else "I cannot check this."
    else:
        correct = _same(expected, given)
        verb = "matches" if correct else "does not match"
        reasoning = f"The candidate's final answer {given} {verb} the expected {expected}."
    if '"correct"' in question:
        return json.dumps({"reasoning": reasoning, "correct": correct})
    return f"{reasoning}\n\n{'[[YES]]' if correct else '[[NO]]'}"

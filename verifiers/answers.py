"""Find the final answer in the part of a completion after its reasoning.

In order: the ``<answer>`` block (R1's template) narrows the search to itself; then the boxed answers
(``\\boxed{…}``, ``\\fbox{…}``) and the last answer phrase ("the final answer is …", 答案是 …,
« la réponse est … », "la respuesta es …", "die Antwort ist …", "Ответ: …"), whichever comes last, so
that an answer stated after an earlier box is the one judged. Several *different* boxes are kept
apart (``Answer.boxes``): the verifier decides whether they are one answer's parts or a hedge. With
``mode="any"`` (for datasets whose answers were never boxed), a text with neither box nor phrase
gives its last LaTeX expression, or its last number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ExtractMode = Literal["boxed", "any"]

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PHRASES = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?"
    r"|(?:最终答案|最后答案|答案)\s*(?:是|为|為|：|:)"
    r"|(?:la\s+)?réponse(?:\s+finale)?\s*(?:est|:)\s*:?"
    r"|(?:la\s+)?respuesta(?:\s+final)?\s*(?:es|:)\s*:?"
    r"|(?:die\s+)?(?:endgültige\s+)?antwort\s*(?:ist|lautet|:)\s*:?"
    r"|ответ\s*(?::|—|равен)"
    r"|答え\s*(?:は|：|:)",
    re.IGNORECASE,
)
_MATH_SPANS = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.DOTALL)
_LAST_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?(?:/\d+)?")
_TRAILING = " \t.。．!！»«\"'“”"


@dataclass(frozen=True)
class Answer:
    """The answer to judge, and every distinct box of the final part when there are several."""

    text: str
    boxes: tuple[str, ...] = ()


def _boxes(text: str) -> list[tuple[int, str]]:
    """Every closed ``\\boxed{…}``: (where it ends, its content), nested braces included."""
    found = []
    for match in _BOXED.finditer(text):
        depth, i = 1, match.end()
        while i < len(text):
            char = text[i]
            if char == "\\":  # an escaped character (\{, \}, \\) never opens or closes a group
                i += 2
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    found.append((i + 1, text[match.end() : i].strip()))
                    break
            i += 1
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last closed ``\\boxed{…}``; None when there is none."""
    boxes = _boxes(text)
    return boxes[-1][1] if boxes else None


def _strip_math(text: str) -> str:
    text = text.strip().strip(_TRAILING).strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right):
            return text[len(left) : -len(right)].strip()
    return text


def _phrase(text: str) -> tuple[int, str] | None:
    """The last answer phrase: (where its answer starts, the answer up to the end of its line)."""
    last = None
    for match in _PHRASES.finditer(text):
        line = text[match.end() :].split("\n", 1)[0]
        value = last_boxed(line) or _strip_math(line)
        if value:
            last = (match.start(), value)
    return last


def _any(text: str) -> str | None:
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPANS.finditer(text)]
    if spans:
        return spans[-1].strip() or None
    numbers = _LAST_NUMBER.findall(text)
    return numbers[-1] if numbers else None


def extract_answer(answer_part: str, mode: ExtractMode = "boxed") -> Answer | None:
    """The final answer of the part after the reasoning (LaTeX without its ``$`` delimiters)."""
    block = _ANSWER_BLOCK.search(answer_part)
    text = block.group(1) if block else answer_part
    boxes = _boxes(text)
    phrase = _phrase(text)
    if phrase is not None and (not boxes or phrase[0] >= boxes[-1][0]):
        return Answer(phrase[1])
    if boxes:
        distinct = tuple(dict.fromkeys(content for _, content in boxes if content))
        return Answer(distinct[-1], distinct if len(distinct) > 1 else ()) if distinct else None
    if block:
        return Answer(_strip_math(text)) if _strip_math(text) else None
    found = _any(text) if mode == "any" else None
    return Answer(found) if found else None

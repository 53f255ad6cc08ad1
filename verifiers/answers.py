"""Find the final answer in a completion: the ``<answer>`` block, the last ``\\boxed{…}``, or an
"answer is …" line, in that order."""

from __future__ import annotations

import re

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL)
_ANSWER_LINE = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)\s*$", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}``, nested braces included; None when absent or unclosed."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth, i = 1, start
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
                    return text[start:i].strip()
            i += 1
    return None


def _strip_math(text: str) -> str:
    text = text.strip().rstrip(".").strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right):
            return text[len(left) : -len(right)].strip()
    return text


def extract_answer(answer_part: str) -> str | None:
    """The final answer inside the part after the reasoning (LaTeX without its ``$`` delimiters)."""
    block = _ANSWER_BLOCK.search(answer_part)
    text = block.group(1) if block else answer_part
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed or None
    if block:
        return _strip_math(text) or None
    for line in reversed(text.strip().splitlines()):
        match = _ANSWER_LINE.search(line)
        if match:
            return _strip_math(match.group(1)) or None
    return None

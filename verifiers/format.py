"""R1's template check: one closed, non-empty ``<think>`` block, then a non-empty answer."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from verifiers.base import DETAIL_CHARS, Candidate, Verdict

NAME = "format"
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _text_after_answer(after: str) -> Verdict | None:
    """The rejection of text after the first ``</answer>`` in ``after`` (the part after ``</think>``),
    quoting it; None where nothing follows, or there is no ``</answer>``."""
    trailing = after.partition("</answer>")[2].strip()
    return Verdict.reject(NAME, "text_after_answer", after=trailing[:DETAIL_CHARS]) if trailing else None


class FormatOptions(BaseModel):
    """``require_answer_tag``: insist on ``<answer>…</answer>`` rather than R1's plain answer.
    ``allow_missing_open_tag``: accept a completion that starts inside the think block, as when the
    chat template already opened it (R1-distill templates do)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    require_answer_tag: bool = False
    allow_missing_open_tag: bool = True


class FormatVerifier:
    """Rejects a missing, unclosed, repeated or empty think block, and an empty or stray answer."""

    name: ClassVar[str] = NAME
    Options: ClassVar[type[BaseModel]] = FormatOptions

    def __init__(self, options: BaseModel) -> None:
        assert isinstance(options, FormatOptions)
        self.options = options

    def verify(self, candidate: Candidate) -> Verdict:
        text = candidate.completion
        opens, closes = text.count("<think>"), text.count("</think>")
        if opens > 1 or closes > 1:
            return Verdict.reject(NAME, "repeated_think", opens=opens, closes=closes)
        if closes == 0:
            if opens:
                return Verdict.reject(NAME, "unclosed_think", looked_for="</think> after the <think> opened")
            return Verdict.reject(NAME, "missing_think", looked_for="a <think>…</think> block")
        before, _, after = text.partition("</think>")
        if opens == 0 and not self.options.allow_missing_open_tag:
            return Verdict.reject(NAME, "missing_open_think", looked_for="<think> before </think>")
        if opens == 1 and before.strip() and not before.lstrip().startswith("<think>"):
            return Verdict.reject(NAME, "text_before_think", before=before.lstrip()[:DETAIL_CHARS])
        if not before.replace("<think>", "").strip():
            return Verdict.reject(NAME, "empty_think", looked_for="text between <think> and </think>")
        return self._check_answer(after)

    def verify_partial(self, candidate: Candidate, seen: int) -> Verdict | None:
        """A second think tag, or text after a closed answer, can only stay: rejected as the full
        check would (unless a fault it ranks first comes later, such as a second ``</think>``)."""
        text = candidate.completion
        opens, closes = text.count("<think>"), text.count("</think>")
        if opens > 1 or closes > 1:
            return Verdict.reject(NAME, "repeated_think", opens=opens, closes=closes)
        return _text_after_answer(text.partition("</think>")[2]) if closes else None

    def _check_answer(self, after: str) -> Verdict:
        if "<answer>" in after or "</answer>" in after:
            if (trailing := _text_after_answer(after)) is not None:
                return trailing
            blocks = _ANSWER_BLOCK.findall(after)
            if len(blocks) != 1 or after.count("<answer>") != 1:
                return Verdict.reject(
                    NAME,
                    "malformed_answer_tag",
                    looked_for="one <answer>…</answer> block",
                    blocks=len(blocks),
                )
            if not blocks[0].strip():
                return Verdict.reject(NAME, "empty_answer", looked_for="text inside <answer>…</answer>")
            return Verdict.accept(template="answer_tag")
        if self.options.require_answer_tag:
            return Verdict.reject(NAME, "missing_answer_tag", looked_for="<answer>…</answer> after </think>")
        if not after.strip():
            return Verdict.reject(NAME, "empty_answer", looked_for="an answer after </think>")
        return Verdict.accept(template="plain")

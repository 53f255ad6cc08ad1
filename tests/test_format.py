"""The format verifier, as a case table: (completion, options, expected reason or None)."""

from __future__ import annotations

from typing import Any

import pytest

from verifiers.base import Candidate
from verifiers.format import FormatOptions, FormatVerifier

CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("<think>\nreason\n</think>\n\nThe answer is 4.", {}, None),
    ("<think>reason</think><answer>4</answer>", {}, None),
    ("<think>reason</think>\n<answer>\n4\n</answer>\n", {}, None),
    ("reason without an opening tag\n</think>\n\n4", {}, None),  # the chat template opened it
    (
        "reason without an opening tag\n</think>\n\n4",
        {"allow_missing_open_tag": False},
        "format:missing_open_think",
    ),
    ("  <think>r</think> 4", {}, None),
    ("The answer is 4.", {}, "format:missing_think"),
    ("<think>reason, then the budget ran out", {}, "format:unclosed_think"),
    ("<think>a</think><think>b</think> 4", {}, "format:repeated_think"),
    ("<think>a</think> 4 </think>", {}, "format:repeated_think"),
    ("<think>   \n </think> 4", {}, "format:empty_think"),
    ("</think> 4", {}, "format:empty_think"),
    ("<think>reason</think>\n\n   ", {}, "format:empty_answer"),
    ("<think>reason</think>", {}, "format:empty_answer"),
    ("<think>reason</think><answer>  </answer>", {}, "format:empty_answer"),
    ("<think>reason</think><answer>4", {}, "format:malformed_answer_tag"),
    ("<think>reason</think><answer>4</answer><answer>5</answer>", {}, "format:text_after_answer"),
    ("<think>reason</think><answer>4</answer> and more", {}, "format:text_after_answer"),
    ("<think>reason</think> 4", {"require_answer_tag": True}, "format:missing_answer_tag"),
    ("<think>reason</think><answer>4</answer>", {"require_answer_tag": True}, None),
    ("preamble <think>reason</think> 4", {}, "format:text_before_think"),
]


@pytest.mark.parametrize(("completion", "options", "reason"), CASES)
def test_format_case(completion: str, options: dict[str, Any], reason: str | None) -> None:
    verdict = FormatVerifier(FormatOptions(**options)).verify(Candidate(completion, None, None))
    assert verdict.reason == reason
    assert verdict.accepted is (reason is None)


def test_every_rejection_says_what_it_looked_for_or_found() -> None:
    """No reason shows "—" as its details: each names what was missing, or quotes what was wrong."""
    for completion, options, reason in CASES:
        if reason is not None:
            verdict = FormatVerifier(FormatOptions(**options)).verify(Candidate(completion, None, None))
            assert verdict.details, reason
    unclosed = FormatVerifier(FormatOptions()).verify(Candidate("<think>then the budget ran out", None, None))
    assert unclosed.details == {"looked_for": "</think> after the <think> opened"}
    after = FormatVerifier(FormatOptions()).verify(
        Candidate("<think>r</think><answer>4</answer> and more", None, None)
    )
    assert after.details == {"after": "and more"}


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        FormatOptions.model_validate({"strict": True})

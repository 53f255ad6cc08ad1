"""Readability: over-long paragraphs and stray code fences."""

from __future__ import annotations

from typing import Any

import pytest

from verifiers.base import Candidate
from verifiers.readability import ReadabilityOptions, ReadabilityVerifier

LONG = "word " * 400
CODE = "<think>Write it.\n\n```python\nprint(1)\n```\n</think>\n\nDone."

CASES: list[tuple[str, dict[str, Any], tuple[dict[str, Any], ...] | None, str | None]] = [
    ("<think>short\n\nparagraphs</think>\n\nAnswer.", {}, None, None),
    (f"<think>{LONG}</think>\n\nAnswer.", {}, None, "readability:long_paragraph"),
    (f"<think>{LONG}</think>\n\nAnswer.", {"max_paragraph_chars": 5000}, None, None),
    (
        f"<think>{'line of work' * 10}\n\n{'more work ' * 10}</think>",
        {"max_paragraph_chars": 150},
        None,
        None,
    ),
    (CODE, {}, None, "readability:code_block"),
    (CODE, {}, ({"type": "assert", "code": "assert True"},), None),  # a code task
    (CODE, {"allow_code": True}, None, None),
    (CODE, {"allow_code": False}, ({"type": "assert"},), "readability:code_block"),
]


@pytest.mark.parametrize(("completion", "options", "tests", "reason"), CASES)
def test_case(
    completion: str, options: dict[str, Any], tests: tuple[dict[str, Any], ...] | None, reason: str | None
) -> None:
    verifier = ReadabilityVerifier(ReadabilityOptions.model_validate(options))
    assert verifier.verify(Candidate(completion, None, None, tests=tests)).reason == reason

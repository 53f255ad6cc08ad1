"""Length: token and character bounds on the completion and its think part; truncation."""

from __future__ import annotations

from typing import Any

import pytest

from verifiers.base import Candidate
from verifiers.length import LengthOptions, LengthVerifier

TEXT = "<think>" + "t" * 800 + "</think>" + "a" * 185  # 1000 characters, 800 of them thinking


@pytest.mark.parametrize(
    ("finish", "tokens", "options", "reason"),
    [
        ("stop", 250, {}, None),
        ("length", 4096, {}, "length:truncated"),
        ("length", 4096, {"reject_truncated": False}, None),
        ("stop", 250, {"max_tokens": 200}, "length:too_long"),
        ("stop", 250, {"min_tokens": 300}, "length:too_short"),
        ("stop", 250, {"max_chars": 999}, "length:too_long"),
        ("stop", 250, {"min_chars": 1001}, "length:too_short"),
        ("stop", 250, {"max_think_tokens": 150}, "length:think_too_long"),
        ("stop", 250, {"min_think_tokens": 250}, "length:think_too_short"),
        ("stop", 250, {"max_think_chars": 700}, "length:think_too_long"),
        ("stop", 250, {"min_think_chars": 900}, "length:think_too_short"),
        ("stop", 250, {"max_tokens": 250, "min_tokens": 250, "max_think_chars": 800}, None),
    ],
)
def test_case(finish: str, tokens: int, options: dict[str, Any], reason: str | None) -> None:
    candidate = Candidate(TEXT, "t" * 800, "a" * 185, finish_reason=finish, completion_tokens=tokens)
    verdict = LengthVerifier(LengthOptions.model_validate(options)).verify(candidate)
    assert verdict.reason == reason
    assert verdict.details["think_tokens_est"] == round(tokens * 800 / 1000)

"""The math verifier over the case table, its extraction, and its bound on sympy."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.cases.math_cases import CASES
from verifiers.answers import Answer, extract_answer, last_boxed
from verifiers.base import Candidate
from verifiers.math_answer import MathOptions, MathVerifier, as_number
from verifiers.runner import VerifierRunner, VerifierSpec

VERIFIER = MathVerifier(MathOptions())


def _candidate(answer: str | None, reference: str | None) -> Candidate:
    return Candidate(
        completion=f"<think>work</think>{answer}", think="work", answer=answer, reference=reference
    )


def test_the_table_is_large_and_covers_every_category() -> None:
    categories = {c for c, *_ in CASES}
    assert len(CASES) >= 150
    assert {
        "integer",
        "fraction",
        "decimal",
        "percent",
        "latex",
        "symbolic",
        "equation",
        "interval",
        "set",
        "multiple",
        "tuple",
        "matrix",
        "units",
        "text",
        "negative",
    } <= categories


@pytest.mark.parametrize(
    ("category", "reference", "answer", "expected"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)]
)
def test_case(category: str, reference: str, answer: str, expected: bool) -> None:
    verdict = VERIFIER.verify(_candidate(answer, reference))
    assert verdict.accepted is expected, verdict
    if not expected:
        assert verdict.reason is not None and verdict.reason.startswith("math:")


@pytest.mark.parametrize(
    ("reference", "answer", "reason"),
    [
        (None, "\\boxed{2}", "math:no_reference"),
        ("2", None, "math:no_answer"),
        ("2", "I give up.", "math:no_answer"),
        ("2", "\\boxed{3}", "math:wrong_answer"),
        ("2", "\\boxed{\\\\}", "math:unparseable_answer"),
    ],
)
def test_rejection_reasons(reference: str | None, answer: str | None, reason: str) -> None:
    assert VERIFIER.verify(_candidate(answer, reference)).reason == reason


def test_details_show_extracted_and_reference() -> None:
    verdict = VERIFIER.verify(_candidate("Thus $\\boxed{\\frac{3}{4}}$.", "0.75"))
    assert verdict.details == {"path": "numeric", "extracted": "\\frac{3}{4}", "reference": "0.75"}


def test_extraction() -> None:
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{\\sqrt{2}}} c") == "\\frac{1}{\\sqrt{2}}"
    assert last_boxed("\\boxed{\\{1,2\\}}") == "\\{1,2\\}"
    assert last_boxed("\\boxed{unclosed") is None
    assert (
        last_boxed("\\boxed{\\begin{pmatrix}1\\\\2\\\\\\end{pmatrix}}")
        == "\\begin{pmatrix}1\\\\2\\\\\\end{pmatrix}"
    )
    assert extract_answer("<answer>42</answer>") == Answer("42")
    assert extract_answer("<answer>so \\boxed{7}</answer> \\boxed{9}") == Answer("7")
    assert extract_answer("Thus, the final answer is: $x=3$.") == Answer("x=3")
    assert extract_answer("nothing here") is None


def test_plain_numbers() -> None:
    assert as_number("\\dfrac{-6}{4}") == as_number("-1.5") == as_number("-3/2")
    assert as_number("x+1") is None and as_number("1/0") is None


def test_a_sympy_hang_is_a_timeout_within_the_bound_and_the_runner_goes_on() -> None:
    """9^(9^9) sends sympy into a C-level big-integer power that no signal interrupts."""
    runner = VerifierRunner(processes=1, timeout_s=30)
    specs = [VerifierSpec("math", {"timeout_s": 1})]
    try:
        asyncio.run(runner.verify(specs, [_candidate("\\boxed{1}", "1")]))  # start the pool process
        start = time.monotonic()
        [[verdict]] = asyncio.run(runner.verify(specs, [_candidate("\\boxed{3}", "9^{9^{9}}")]))
        elapsed = time.monotonic() - start
        assert verdict.reason == "math:timeout"
        assert elapsed < 1 + 5 + 2  # the option's bound plus the runner's slack for a hard kill
        [[after]] = asyncio.run(runner.verify(specs, [_candidate("\\boxed{\\frac{1}{2}}", "0.5")]))
        assert after.accepted
    finally:
        runner.close()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        MathOptions.model_validate({"timeout_s": 0})


def test_no_answer_says_what_it_looked_for() -> None:
    verifier = MathVerifier(MathOptions())
    missing = verifier.verify(Candidate("<think>r</think>", "r", None, reference="2"))
    assert missing.reason == "math:no_answer" and "answer part" in missing.details["looked_for"]
    vague = verifier.verify(Candidate("<think>r</think>I give up.", "r", "I give up.", reference="2"))
    assert vague.details == {"looked_for": "a \\boxed{…} or an answer phrase", "answer": "I give up."}

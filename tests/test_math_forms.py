"""The math verifier on answers in the forms teachers write them, taken through the worker's split:
R1's ``<answer>`` template, hedges, several boxes, a later answer phrase, phrases in other languages,
and unboxed answers under both ``extract`` modes, with the false accepts of each mode counted."""

from __future__ import annotations

import pytest

from tests.cases.math_cases import CASES
from tests.worker_path import as_worker_sees
from verifiers.math_answer import MathOptions, MathVerifier

THINK = "<think>\nLet me work it out step by step.\n</think>\n\n"
# (form, reference, what follows the reasoning, reason under extract=boxed, reason under extract=any)
FORMS: list[tuple[str, str, str, str | None, str | None]] = [
    ("r1 template", "11", "<answer>11</answer>", None, None),
    ("r1 template", "11", "<answer>\n$\\frac{22}{2}$\n</answer>", None, None),
    ("r1 template", "11", "<answer>12</answer>", "math:wrong_answer", "math:wrong_answer"),
    ("r1 template", "\\frac{1}{2}", "<answer>The answer is \\boxed{\\frac12}</answer>", None, None),
    ("hedge", "11", "\\boxed{10}, or possibly \\boxed{11}", "math:ambiguous_answer", "math:ambiguous_answer"),
    (
        "hedge",
        "11",
        "It is \\boxed{11} or maybe \\boxed{12}.",
        "math:ambiguous_answer",
        "math:ambiguous_answer",
    ),
    ("hedge", "11", "\\boxed{11}. Checking again: \\boxed{11}.", None, None),
    ("several boxes", "2, 3", "The roots are \\boxed{2} and \\boxed{3}.", None, None),
    ("several boxes", "\\{-1, 4\\}", "So $x = \\boxed{4}$ or $x = \\boxed{-1}$.", None, None),
    ("several boxes", "(1, 2)", "$x = \\boxed{1}$, $y = \\boxed{2}$", None, None),
    (
        "several boxes",
        "2, 3",
        "The roots are \\boxed{2} and \\boxed{5}.",
        "math:wrong_answer",
        "math:wrong_answer",
    ),
    (
        "later phrase",
        "44",
        "At first \\boxed{42}, but I missed a term, so the final answer is $44$.",
        None,
        None,
    ),
    (
        "later phrase",
        "42",
        "At first \\boxed{42}, but I missed a term, so the final answer is $44$.",
        "math:wrong_answer",
        "math:wrong_answer",
    ),
    ("later phrase", "42", "The answer is \\boxed{42}.", None, None),
    ("chinese", "11", "所以答案是 11。", None, None),
    ("chinese", "11", "因此，答案为 $11$。", None, None),
    ("chinese", "\\frac{3}{4}", "最终答案：$\\frac{3}{4}$", None, None),
    ("chinese", "11", "所以答案是 12。", "math:wrong_answer", "math:wrong_answer"),
    ("french", "11", "Réponse : 11", None, None),
    ("french", "11", "Donc la réponse est $11$.", None, None),
    ("french", "11", "La réponse finale est 13.", "math:wrong_answer", "math:wrong_answer"),
    ("spanish", "7", "Por lo tanto, la respuesta es 7.", None, None),
    ("spanish", "7", "Respuesta: $7$", None, None),
    ("spanish", "7", "La respuesta es 8.", "math:wrong_answer", "math:wrong_answer"),
    ("german", "12", "Die Antwort ist 12.", None, None),
    ("german", "12", "Also lautet die Antwort: $12$", None, None),
    ("german", "12", "Die endgültige Antwort ist 21.", "math:wrong_answer", "math:wrong_answer"),
    ("russian", "5", "Ответ: 5", None, None),
    ("unboxed", "11", "We get $x = 11$ in the end.", "math:no_answer", None),
    ("unboxed", "11", "Adding them gives 11", "math:no_answer", None),
    ("unboxed", "11", "Adding them gives 12", "math:no_answer", "math:wrong_answer"),
    (
        "unboxed",
        "11",
        "We get $x = 10$, then $11$ is not it; the value is $12$.",
        "math:no_answer",
        "math:wrong_answer",
    ),
    ("unboxed", "11", "I could not finish.", "math:no_answer", "math:no_answer"),
]


@pytest.mark.parametrize("mode", ["boxed", "any"])
@pytest.mark.parametrize(
    ("form", "reference", "answer", "boxed_reason", "any_reason"),
    FORMS,
    ids=[f"{i}-{f[0]}" for i, f in enumerate(FORMS)],
)
def test_form(  # noqa: PLR0917 (one parameter a column of the table)
    mode: str, form: str, reference: str, answer: str, boxed_reason: str | None, any_reason: str | None
) -> None:
    verifier = MathVerifier(MathOptions(extract=mode))  # type: ignore[arg-type]
    verdict = verifier.verify(as_worker_sees(THINK + answer, reference=reference))
    assert verdict.reason == (boxed_reason if mode == "boxed" else any_reason), verdict.details


@pytest.mark.parametrize("mode", ["boxed", "any"])
def test_no_mode_accepts_a_wrong_answer_of_the_tables(mode: str) -> None:
    """False accepts, counted over the whole case table and the forms above: none in either mode."""
    verifier = MathVerifier(MathOptions(extract=mode))  # type: ignore[arg-type]
    wrong = [(ref, answer) for _, ref, answer, right in CASES if not right]
    wrong += [
        (ref, answer) for _, ref, answer, boxed, anyway in FORMS if (boxed if mode == "boxed" else anyway)
    ]
    false_accepts = [
        (ref, answer)
        for ref, answer in wrong
        if verifier.verify(as_worker_sees(THINK + answer, reference=ref)).accepted
    ]
    assert len(wrong) > 60 and false_accepts == []

"""Presets of math sets: the final answer is the reference, checked by the math verifier."""

from __future__ import annotations

from service.presets.preset import Preset, Row, text_of
from verifiers.answers import last_boxed


def _no_answer(row: Row) -> str | None:
    answer = text_of(row["answer"])
    if answer is None or answer.lower() in ("proof", "notfound", "none"):
        return "no final answer to check (a proof, or none found)"
    return None


def _boxed_or_answer(row: Row) -> str | None:
    return text_of(row.get("answer")) or last_boxed(str(row["solution"] or ""))


def _gsm8k_answer(row: Row) -> str | None:
    _, mark, after = str(row["answer"]).rpartition("####")
    return after.strip().replace(",", "") if mark else None


MATH_SETS = [
    Preset(
        "numinamath-1.5",
        "AI-MO/NuminaMath-1.5",
        "Apache-2.0",
        ("problem", "answer"),
        prompt=lambda r: str(r["problem"]),
        reference=lambda r: text_of(r["answer"]),
        skip=_no_answer,
        metadata=("problem_type", "question_type", "source"),
    ),
    Preset(
        "numinamath-cot",
        "AI-MO/NuminaMath-CoT",
        "Apache-2.0",
        ("problem", "solution"),
        prompt=lambda r: str(r["problem"]),
        reference=lambda r: last_boxed(str(r["solution"])),
        missing="no \\boxed answer in the solution",
        metadata=("source",),
    ),
    Preset(
        "openr1-math",
        "open-r1/OpenR1-Math-220k",
        "Apache-2.0",
        ("problem", "answer"),
        prompt=lambda r: str(r["problem"]),
        reference=lambda r: text_of(r["answer"]),
        skip=_no_answer,
        id="uuid",
        metadata=("problem_type", "question_type", "source"),
    ),
    Preset(
        "deepscaler",
        "agentica-org/DeepScaleR-Preview-Dataset",
        "MIT",
        ("problem", "answer"),
        prompt=lambda r: str(r["problem"]),
        reference=lambda r: text_of(r["answer"]),
        skip=_no_answer,
    ),
    Preset(
        "aime",
        "AI-MO/aimo-validation-aime, HuggingFaceH4/aime_2024",
        "the problems are the MAA's",
        ("problem", "answer"),
        prompt=lambda r: str(r["problem"]),
        reference=lambda r: text_of(r["answer"]),
        skip=_no_answer,
        id="id",
        metadata=("year", "url"),
    ),
    Preset(
        "gsm8k",
        "openai/gsm8k (main)",
        "MIT",
        ("question", "answer"),
        prompt=lambda r: str(r["question"]),
        reference=_gsm8k_answer,
        missing="no '####' answer line",
    ),
    Preset(
        "math",
        "EleutherAI/hendrycks_math, HuggingFaceH4/MATH-500",
        "MIT",
        ("problem", "solution"),
        prompt=lambda r: str(r["problem"]),
        reference=_boxed_or_answer,
        missing="no \\boxed answer in the solution",
        id="unique_id",
        metadata=("level", "type", "subject"),
    ),
]

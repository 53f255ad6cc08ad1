"""Verifier speed on one core, and our math verifier against math-verify's own parse+verify.

    python bench/verifiers.py [--prompts 300]

The set mixes the stand-in teacher's completions (four samples per prompt, right, wrong, malformed,
over-long and language-mixed) with the hand-written math case table (fractions, intervals, matrices,
symbolic expressions…). Both math paths run in this process, pinned to one core, with timeouts off
(math-verify's use SIGALRM; ours come from the runner), on the same items in the same order. The
last line is ``verifiers: math_per_s=X langmix_per_s=Y format_per_s=Z …``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, and this very file would shadow the package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from service.reasoning import split_completion
from service.standin.text import compose, solve
from tests.cases.math_cases import CASES
from verifiers.base import Candidate, Verdict
from verifiers.format import FormatOptions, FormatVerifier
from verifiers.language import LanguageMixVerifier, LanguageOptions
from verifiers.length import LengthOptions, LengthVerifier
from verifiers.math_answer import MathOptions, MathVerifier, _latex, _parse
from verifiers.readability import ReadabilityOptions, ReadabilityVerifier

MIN_SECONDS = 1.0


def standin_items(prompts: int) -> list[Candidate]:
    rng = random.Random(7)
    items = []
    for _ in range(prompts):
        a, b, c = rng.randint(2, 90), rng.randint(2, 40), rng.randint(2, 30)
        prompt = rng.choice(
            [f"Compute ({a} + {b}) * {c}.", f"Evaluate {a} / {b} + {c}.", f"What is {a} * {b} - {c}?"]
        )
        _, value, _ = solve(prompt)  # type: ignore[misc]
        reference = (
            str(value.numerator)
            if value.denominator == 1
            else f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
        )
        messages = ({"role": "user", "content": prompt},)
        for index in range(4):
            split = split_completion(compose(prompt, 1, index, correct_share=0.6))
            items.append(
                Candidate(
                    split.completion,
                    split.think,
                    split.answer,
                    "stop",
                    len(split.completion) // 4,
                    messages,
                    reference,
                )
            )
    return items


def table_items() -> list[Candidate]:
    return [
        Candidate(f"<think>w</think>\n\n{answer}", "w", answer, "stop", 10, (), reference)
        for _, reference, answer, _ in CASES
    ]


def rate(check: Callable[[Candidate], Any], items: list[Candidate]) -> tuple[float, list[Any]]:
    """Calls per second over the items (repeated until a second has passed), and the first pass's results."""
    results, calls, start = [check(c) for c in items], len(items), time.perf_counter()
    while time.perf_counter() - start < MIN_SECONDS:
        for c in items:
            check(c)
        calls += len(items)
    return calls / (time.perf_counter() - start), results


def math_verify_baseline(candidate: Candidate) -> bool:
    from math_verify import parse, verify

    gold = parse(_latex(candidate.reference or ""), parsing_timeout=None)  # type: ignore[arg-type]
    answer = parse(candidate.answer or "", parsing_timeout=None)  # type: ignore[arg-type]
    return bool(verify(gold, answer, timeout_seconds=None))


def timed_once(
    check: Callable[[Candidate], Any], items: list[Candidate], clear: Callable[[], None]
) -> tuple[float, list[Any]]:
    """One cold pass (caches cleared first): unique verifications per second."""
    clear()
    start = time.perf_counter()
    results = [check(c) for c in items]
    return len(items) / (time.perf_counter() - start), results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=300)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    completions = standin_items(args.prompts)
    table = table_items()
    math_items = completions + table
    random.Random(3).shuffle(math_items)
    ours = MathVerifier(MathOptions())
    # One untimed pass of each first: imports, and ANTLR's parser warms its prediction tables (shared by
    # both paths) over its first parses, so whichever ran first would pay for the other.
    for item in math_items:
        math_verify_baseline(item)
        ours.verify(item)
    ours_rate, our_verdicts = timed_once(ours.verify, math_items, _parse.cache_clear)
    theirs_rate, their_verdicts = timed_once(math_verify_baseline, math_items, lambda: None)
    hard = table_items()
    hard_ours, _ = timed_once(ours.verify, hard, _parse.cache_clear)
    hard_theirs, _ = timed_once(math_verify_baseline, hard, lambda: None)
    disagreements = [
        (c, v, t) for c, v, t in zip(math_items, our_verdicts, their_verdicts, strict=True) if v.accepted != t
    ]
    agree = len(math_items) - len(disagreements)
    labels = {(ref, ans): expected for _, ref, ans, expected in CASES}
    ours_right = sum(ours.verify(c).accepted == labels[(c.reference, c.answer)] for c in table)
    theirs_right = sum(math_verify_baseline(c) == labels[(c.reference, c.answer)] for c in table)
    paths: dict[str, int] = {}
    for verdict in our_verdicts:
        path = verdict.details.get("path", verdict.reason or "none")
        paths[path] = paths.get(path, 0) + 1

    others: dict[str, Callable[[Candidate], Verdict]] = {
        "format": FormatVerifier(FormatOptions()).verify,
        "langmix": LanguageMixVerifier(LanguageOptions()).verify,
        "readability": ReadabilityVerifier(ReadabilityOptions()).verify,
        "length": LengthVerifier(LengthOptions()).verify,
    }
    rates = {name: rate(check, completions)[0] for name, check in others.items()}

    print(
        f"items: {len(completions)} stand-in completions ({args.prompts} prompts x 4) "
        f"+ {len(table)} table cases; one core"
    )
    print(f"math (ours):        {ours_rate:8.0f} verifications/s   paths {paths}")
    print(f"math-verify itself: {theirs_rate:8.0f} verifications/s")
    print(f"speed-up: {ours_rate / theirs_rate:.2f}x   agreement with math-verify: {agree}/{len(math_items)}")
    print(
        f"table cases alone (few fast paths): ours {hard_ours:.0f}/s, math-verify {hard_theirs:.0f}/s, "
        f"{hard_ours / hard_theirs:.2f}x"
    )
    print(
        f"right on the labelled table: ours {ours_right}/{len(table)}, "
        f"math-verify {theirs_right}/{len(table)}"
    )
    for c, v, t in disagreements:
        print(
            f"  differs: reference {c.reference!r}, answer {c.answer!r}: ours {v.accepted}, math-verify {t}"
        )
    for name, value in rates.items():
        print(f"{name + ':':12} {value:10.0f} verifications/s")
    print(
        f"verifiers: math_per_s={ours_rate:.0f} langmix_per_s={rates['langmix']:.0f} "
        f"format_per_s={rates['format']:.0f} "
        f"readability_per_s={rates['readability']:.0f} length_per_s={rates['length']:.0f} "
        f"math_verify_per_s={theirs_rate:.0f} math_speedup={ours_rate / theirs_rate:.2f} "
        f"math_agreement={agree / len(math_items):.4f}"
    )


if __name__ == "__main__":
    main()

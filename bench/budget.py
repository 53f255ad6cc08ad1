"""Adaptive sample budget: the same prompts and the same total samples, spent flat or where needed.

    python bench/budget.py [--prompts 300] [--per-prompt 4] [--cap 32]

The teacher is a stand-in that solves nine in ten samples of an easy prompt and one in ten of a hard
one; a third of the prompts are hard (a number above 100 in the sum). Both jobs may draw
``prompts * per-prompt`` samples in all. Flat: ``n = per-prompt`` for every prompt. Adaptive: a first
round of one sample each, then rounds of one for each prompt still without an accepted sample, up to
``cap``, while the budget lasts; a prompt stops at its first accepted sample. Both run on one API and
worker, with the same verifiers (format, math). Printed for each job: samples drawn against the
budget, prompts with at least one accepted sample, and by pass-rate bucket the prompts, samples and
teacher tokens per accepted sample. The last line is ``budget: accepted_prompts_ratio=R within_budget=B``,
R the prompts with an accepted sample adaptive over flat (goal ≥ 1.15), B 1 when neither job drew
more samples than its budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.judge import run_job, stack
from service.cli.client import ApiClient
from service.standin.server import DEFAULT_MODEL

HARD_ABOVE = 100
TEACHER = ["--correct-share", "0.9", "--hard-above", str(HARD_ABOVE), "--hard-correct-share", "0.1"]
VERIFIERS = [{"name": "format"}, {"name": "math"}]


def prompts(count: int) -> list[dict[str, str]]:
    """Every third prompt is hard: a number above ``HARD_ABOVE`` in its sum."""
    out = []
    for i in range(count):
        a, b = (HARD_ABOVE + 1 + i, 7 + i % 5) if i % 3 == 0 else (i % 50, i % 7 + 1)
        out.append({"id": f"p{i}", "prompt": f"Compute {a} + {b}.", "reference": str(a + b)})
    return out


def body(teacher: str, count: int, per_prompt: int, cap: int, adaptive: bool) -> dict[str, Any]:
    job: dict[str, Any] = {
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL},
        "sampling": {"seed": 11, "max_tokens": 400},
        "verifiers": VERIFIERS,
        "prompts": prompts(count),
    }
    if adaptive:
        return job | {"n": cap, "adaptive_budget": {"total_samples": count * per_prompt, "first_round": 1}}
    return job | {"n": per_prompt}


def report(client: ApiClient, name: str, job: dict[str, Any], budget: int) -> tuple[int, bool]:
    buckets = client.http.get(f"/v1/jobs/{job['id']}/difficulty").raise_for_status().json()
    solved = sum(b["prompts"] for b in buckets if b["up_to"] > 0)
    drawn = job["samples"]["total"]
    print(f"{name}: {drawn} samples of a budget of {budget}; {solved} prompts with an accepted sample")
    for b in buckets:
        band = f"{b['above'] if b['above'] is not None else '='}..{b['up_to']}"
        per = f"{b['tokens_per_accepted']:.0f}" if b["tokens_per_accepted"] else "-"
        counts = f"{b['prompts']:>4} prompts {b['samples']:>5} samples"
        print(f"  pass rate {band:>9}: {counts} {per:>6} tokens/accepted")
    return solved, drawn <= budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--cap", type=int, default=32)
    args = parser.parse_args()
    budget = args.prompts * args.per_prompt
    with tempfile.TemporaryDirectory() as root, stack(Path(root), 0, 32, TEACHER) as (client, teacher, _):
        results = {}
        for name, adaptive in (("flat", False), ("adaptive", True)):
            _, job = run_job(client, body(teacher, args.prompts, args.per_prompt, args.cap, adaptive))
            results[name] = report(client, name, job, budget)
    ratio = results["adaptive"][0] / max(1, results["flat"][0])
    within = int(all(ok for _, ok in results.values()))
    print(f"budget: accepted_prompts_ratio={ratio:.3f} within_budget={within}")


if __name__ == "__main__":
    main()

"""Sandboxed tests per second: small Python programs judged by the code verifier, in the pool.

    python bench/sandbox.py [--samples 200] [--tests 3] [--processes N]

Each sample is a correct solution with ``--tests`` tests, verified through the same VerifierRunner a
worker uses, all processes busy, three times side by side: with stdin tests (a sandboxed run each,
the program run bare), with assert tests of the same function and with call-based tests of it (the
APPS/TACO ``fn_name`` layout); the last two run under the harness, one sandboxed run for all of a
sample's tests, each test in a child of its own (see verifiers/code/assert_harness.py). The last line is
``sandbox: runs_per_s=X assert_tests_per_s=Y call_tests_per_s=Z harness_cost_pct=C call_vs_stdin=R
tests=N isolation=LEVEL``: the harness costs more than a bare run, once a run, and less for every
further test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, and bench/verifiers.py would shadow the package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from verifiers.base import Candidate
from verifiers.code import sandbox
from verifiers.runner import VerifierRunner, VerifierSpec

FUNCTION = "def squares(n):\n    return sum(i * i for i in range(n))\n"
PROGRAMS = {
    "stdin": f"```python\n{FUNCTION}\nprint(squares(int(input())))\n```",
    "assert": f"```python\n{FUNCTION}```",
    "call": f"```python\n{FUNCTION}```",
}
BATCH = 8


def tests_for(kind: str, n: int, count: int) -> Any:
    expected = {k: sum(i * i for i in range(k)) for k in range(n, n + count)}
    if kind == "stdin":
        return tuple(
            {"type": "stdin_stdout", "input": f"{k}\n", "output": f"{v}\n"} for k, v in expected.items()
        )
    if kind == "call":  # as TACO stores them: a JSON text, each output in a list of one
        calls = {
            "fn_name": "squares",
            "inputs": [[k] for k in expected],
            "outputs": [[v] for v in expected.values()],
        }
        return json.dumps(calls)
    return tuple({"type": "assert", "code": f"assert squares({k}) == {v}\n"} for k, v in expected.items())


def samples_for(kind: str, count: int, tests: int) -> list[Candidate]:
    program = PROGRAMS[kind]
    return [
        Candidate(f"<think>x</think>{program}", "x", program, tests=tests_for(kind, i % 50 + 1, tests))
        for i in range(count)
    ]


async def judge_all(runner: VerifierRunner, samples: list[Candidate]) -> list[bool]:
    spec = [VerifierSpec("code")]
    batches = [samples[i : i + BATCH] for i in range(0, len(samples), BATCH)]
    results = await asyncio.gather(*(runner.verify(spec, batch) for batch in batches))
    return [verdict.accepted for batch in results for [verdict] in batch]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tests", type=int, default=3, help="tests a sample (MBPP gives 3 asserts)")
    args = parser.parse_args()
    runner = VerifierRunner(processes=args.processes, timeout_s=120)
    rates: dict[str, float] = {}
    try:
        for kind in PROGRAMS:
            samples = samples_for(kind, args.samples, args.tests)
            asyncio.run(judge_all(runner, samples[: args.processes * BATCH]))  # start and warm the pool
            start = time.perf_counter()
            accepted = asyncio.run(judge_all(runner, samples))
            seconds = time.perf_counter() - start
            tests = args.tests * len(samples)
            rates[kind] = tests / seconds
            print(
                f"{kind} tests: {len(samples)} samples ({sum(accepted)} accepted), {tests} tests "
                f"in {seconds:.2f} s on {args.processes} processes"
            )
            if sum(accepted) != len(samples):
                raise SystemExit(f"{kind}: a correct program was rejected")
    finally:
        runner.close()
    cost = 100 * (1 - rates["assert"] / rates["stdin"])
    print(
        f"sandbox: runs_per_s={rates['stdin']:.1f} assert_tests_per_s={rates['assert']:.1f} "
        f"call_tests_per_s={rates['call']:.1f} harness_cost_pct={cost:.1f} "
        f"call_vs_stdin={rates['call'] / rates['stdin']:.2f} tests={args.tests} "
        f"isolation={sandbox.isolation()}"
    )


if __name__ == "__main__":
    main()

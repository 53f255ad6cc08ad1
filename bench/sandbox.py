"""Sandboxed test runs per second: small Python programs judged by the code verifier, in the pool.

    python bench/sandbox.py [--samples 200] [--processes N]

Each sample is a correct solution with two stdin tests (two sandboxed runs), verified through the
same VerifierRunner a worker uses, all processes busy. The last line is
``sandbox: runs_per_s=X isolation=LEVEL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/verifiers.py would shadow the package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from verifiers import sandbox
from verifiers.base import Candidate
from verifiers.runner import VerifierRunner, VerifierSpec

PROGRAM = "```python\nn = int(input())\nprint(sum(i * i for i in range(n)))\n```"
BATCH = 8


def tests_for(n: int) -> tuple[dict[str, str], ...]:
    return tuple(
        {"type": "stdin_stdout", "input": f"{k}\n", "output": f"{sum(i * i for i in range(k))}\n"}
        for k in (n, n + 1)
    )


async def judge_all(runner: VerifierRunner, samples: list[Candidate]) -> list[bool]:
    spec = [VerifierSpec("code")]
    batches = [samples[i : i + BATCH] for i in range(0, len(samples), BATCH)]
    results = await asyncio.gather(*(runner.verify(spec, batch) for batch in batches))
    return [verdict.accepted for batch in results for [(_, verdict)] in batch]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    samples = [
        Candidate(f"<think>x</think>{PROGRAM}", "x", PROGRAM, tests=tests_for(i % 50 + 1))
        for i in range(args.samples)
    ]
    runner = VerifierRunner(processes=args.processes, timeout_s=120)
    try:
        asyncio.run(judge_all(runner, samples[: args.processes * BATCH]))  # start and warm the pool
        start = time.perf_counter()
        accepted = asyncio.run(judge_all(runner, samples))
        seconds = time.perf_counter() - start
    finally:
        runner.close()
    runs = 2 * len(samples)
    print(
        f"samples: {len(samples)} ({sum(accepted)} accepted), {runs} sandboxed runs in {seconds:.2f} s "
        f"on {args.processes} processes"
    )
    print(f"sandbox: runs_per_s={runs / seconds:.1f} isolation={sandbox.isolation()}")


if __name__ == "__main__":
    main()

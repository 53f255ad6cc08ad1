"""Early abort: the same job with and without ``abort_early``, side by side on one API and worker.

    python bench/abort.py [--prompts 64] [-n 4] [--rounds 1]

The teacher is a stand-in continuous-batching engine whose samples fail as R1-style traces do: 10%
loop until ``max_tokens`` (8,192), 5% drift into Chinese halfway, 5% run to 90% of ``max_tokens``,
the rest log-normal around 1,500 tokens. Both jobs ask for the same samples (same seeds) and check
them with format, math, langmix, length (at most 4,096 tokens) and repetition; with ``abort_early``
each sample is streamed and stopped at its first early rejection. Each job is timed from its creation
to done, its last shard written; with ``--rounds`` above one the two alternate and the best round of
each counts. Printed: samples, teacher tokens, accepted samples, wall time and the reasons of the
aborted samples; the last line is ``abort: kept_same=K tokens_per_kept_ratio=R wall_ratio=W``, K 1
when the accepted samples (prompt, index, text) are the same in both jobs, R the teacher's tokens per
accepted sample with abort over without (goal ≤ 0.7), W the wall time with over without (≤ 0.8).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
import pyarrow.parquet as pq

from bench.judge import run_job, stack
from service.cli.client import ApiClient
from service.standin.server import DEFAULT_MODEL

MAX_TOKENS = 8192
# The judge bench's engine, its steps five times slower: a teacher whose tokens are what the job waits
# for, as a real one's are (the judge bench's own spends most of a job in the pipeline, not the engine).
TEACHER = ["--token-delay", "0.001", "--loop-share", "0.1", "--drift-share", "0.05", "--long-share", "0.05"]
VERIFIERS = [
    {"name": "format"},
    {"name": "math"},
    {"name": "langmix"},
    {"name": "length", "options": {"max_tokens": 4096}},
    {"name": "repetition"},
]


def body(teacher: str, prompts: int, n: int, abort_early: bool) -> dict[str, Any]:
    return {
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL},
        "n": n,
        "sampling": {"seed": 7, "max_tokens": MAX_TOKENS},
        "abort_early": abort_early,
        "verifiers": VERIFIERS,
        "prompts": [
            {
                "id": f"p{i}",
                "prompt": f"Compute ({i} + 7) * {i % 13 + 2}.",
                "reference": str((i + 7) * (i % 13 + 2)),
            }
            for i in range(prompts)
        ],
    }


def kept(client: ApiClient, job_id: str) -> set[tuple[str, int, str]]:
    """The job's accepted samples as its shards hold them."""
    rows: set[tuple[str, int, str]] = set()
    for shard in client.shards(job_id):
        if shard["kind"] == "accepted":
            for row in pq.read_table(shard["location"]).to_pylist():
                rows.add((row["prompt_id"], row["sample_index"], row["completion"]))
    return rows


def aborted_reasons(api: str, job_id: str) -> Counter[str]:
    """Reasons of the job's samples that ended in an abort, from the samples API."""
    reasons: Counter[str] = Counter()
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "rejected", "limit": 500} | ({"cursor": cursor} if cursor else {})
        page = httpx.get(f"{api}/v1/jobs/{job_id}/samples", params=params, timeout=60).json()
        for sample in page["items"]:
            if sample["finish_reason"] == "abort":
                reasons[sample["reason"]] += 1
        cursor = page.get("next_cursor")
        if not cursor:
            return reasons


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    in_flight = max(1, 128 // args.n)
    best: dict[bool, tuple[float, dict[str, Any], set[tuple[str, int, str]], Counter[str]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tracemill-bench-") as tmp,
        stack(Path(tmp), 1500, in_flight, TEACHER) as (client, teacher, _judge),
    ):
        api = str(client.http.base_url)
        for _ in range(args.rounds):
            for abort_early in (False, True):
                seconds, job = run_job(client, body(teacher, args.prompts, args.n, abort_early))
                samples = kept(client, job["id"])
                if abort_early not in best or seconds < best[abort_early][0]:
                    best[abort_early] = (seconds, job, samples, aborted_reasons(api, job["id"]))
    figures = {}
    for abort_early, (seconds, job, samples, reasons) in best.items():
        tokens = sum(u["completion_tokens"] for u in job["usage"] if u["role"] == "teacher")
        per_kept = tokens / max(1, len(samples))
        figures[abort_early] = (seconds, per_kept)
        print(
            f"abort_early={abort_early}: {job['samples']['total']} samples in {seconds:.1f} s, "
            f"{tokens:,} teacher tokens, {len(samples)} accepted ({per_kept:,.0f} tokens each); "
            f"aborted: {dict(reasons) or 'none'}"
        )
    same = int(best[False][2] == best[True][2] and bool(best[False][2]))
    ratio = figures[True][1] / figures[False][1]
    wall = figures[True][0] / figures[False][0]
    print(f"abort: kept_same={same} tokens_per_kept_ratio={ratio:.3f} wall_ratio={wall:.3f}")


if __name__ == "__main__":
    main()

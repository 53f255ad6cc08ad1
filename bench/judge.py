"""What a judge costs a job: the same prompts with ``math`` alone and with ``math`` + a ``judge``
fallback, side by side on one API and worker.

    python bench/judge.py [--prompts 500] [-n 4] [--rounds 1]

Half the prompts carry no reference, so the judge decides for their samples (``fallback_for``
``math:no_reference`` and the unparseable reasons): about half of all samples are asked of it.
Teacher and judge are stand-ins with the same timing, a continuous-batching engine whose requests
take about a second (the judge's replies are short, so it answers within the teacher's latency).
Each job is timed from its creation to done, its last shard written; with ``--rounds`` above one
the two jobs alternate and the best round of each counts. The last line is ``judge: samples=N
judge_calls=M ratio_vs_no_judge=R``, R the job's samples/s with the judge over without (goal ≥ 0.9).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.cli.client import ApiClient
from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL

POLL_S = 0.2
SLOTS = 128  # the engine's sequences at once; requests in flight are SLOTS // n
ENGINE = ["--max-num-seqs", str(SLOTS), "--ttft", "0.5", "--token-delay", "0.0002", "--batch-slowdown", "0.5"]
FALLBACK = ["math:no_reference", "math:unparseable_reference", "math:unparseable_answer"]


def prompts(count: int, prefix: str) -> list[dict[str, Any]]:
    """Arithmetic prompts; the odd ones without their reference, for the judge."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        prompt: dict[str, Any] = {
            "id": f"{prefix}{i}",
            "prompt": f"Compute ({i} + 7) * {i % 13 + 2} - {i % 5}.",
        }
        if i % 2 == 0:
            prompt["reference"] = str((i + 7) * (i % 13 + 2) - i % 5)
        out.append(prompt)
    return out


def run_job(client: ApiClient, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    job_id = client.create_job(body)["id"]
    while (job := client.job(job_id))["status"] != "done":
        if job["status"] in ("failed", "cancelled", "paused"):
            raise SystemExit(f"job {job_id} is {job['status']}: {job.get('status_reason')}")
        time.sleep(POLL_S)
    return time.perf_counter() - start, job


@contextlib.contextmanager
def stack(
    root: Path, length_median: int, in_flight: int, teacher_args: Sequence[str] = ()
) -> Iterator[tuple[ApiClient, str, str]]:
    """Teacher and judge stand-ins (``teacher_args``: more of the teacher's options), ``tracemill
    serve`` and one worker; the API client and the two models' URLs."""
    env = {"TRACEMILL_DATA_DIR": str(root), "TRACEMILL_FLUSH_INTERVAL": "0.2"}
    ports = {name: free_port() for name in ("teacher", "judge", "api")}
    models = {"teacher": [*ENGINE, "--length-median", str(length_median), *teacher_args], "judge": ENGINE}
    processes = []
    try:
        for name, engine in models.items():
            processes.append(
                spawn(["teacher-standin", "--port", str(ports[name]), *engine], root / f"{name}.log")
            )
            wait_http(f"http://127.0.0.1:{ports[name]}/health", processes[-1], root / f"{name}.log")
        processes.append(spawn(["serve", "--port", str(ports["api"])], root / "api.log", env))
        wait_http(f"http://127.0.0.1:{ports['api']}/v1/health", processes[-1], root / "api.log")
        processes.append(spawn(["worker", "--max-in-flight", str(in_flight)], root / "worker.log", env))
        urls = [f"http://127.0.0.1:{ports[name]}/v1" for name in models]
        yield ApiClient(f"http://127.0.0.1:{ports['api']}"), urls[0], urls[1]
    finally:
        stop(list(reversed(processes)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--length-median", type=int, default=1500, help="teacher completion tokens")
    args = parser.parse_args()
    in_flight = max(1, SLOTS // args.n)

    best: dict[str, tuple[float, dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="tracemill-bench-") as tmp,
        stack(Path(tmp), args.length_median, in_flight) as (client, teacher, judge),
    ):
        variants = {
            "math": [{"name": "math"}],
            "math+judge": [
                {"name": "math"},
                {"name": "judge", "options": {"judge": {"base_url": judge, "model": DEFAULT_MODEL}},
                 "fallback_for": FALLBACK},
            ],
        }  # fmt: skip

        def body(verifiers: list[dict[str, Any]], count: int, prefix: str) -> dict[str, Any]:
            return {"teacher": {"base_url": teacher, "model": DEFAULT_MODEL}, "n": args.n,
                    "sampling": {"seed": 1, "max_tokens": 4096}, "verifiers": verifiers,
                    "prompts": prompts(count, prefix)}  # fmt: skip

        run_job(client, body(variants["math+judge"], in_flight, "warm"))  # both paths warm
        for round_number in range(args.rounds):
            for name, verifiers in variants.items():
                seconds, job = run_job(client, body(verifiers, args.prompts, f"r{round_number}"))
                total = job["samples"]["total"]
                print(f"{name}: round {round_number}: {total} samples in {seconds:.1f} s, "
                      f"{total / seconds:.1f}/s, acceptance {job['samples']['acceptance_rate']}")  # fmt: skip
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, job)
    report(best)


def report(best: dict[str, tuple[float, dict[str, Any]]]) -> None:
    (plain_s, plain), (judged_s, judged) = best["math"], best["math+judge"]
    stats = {v["name"]: v for v in judged["verifiers"]}["judge"]
    calls = stats["accepted"] + stats["rejected"]
    usage = {u["role"]: u for u in judged["usage"]}["judge"]
    print(f"judge tokens: {usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} reply; "
          f"judge time {stats['seconds']:.0f} s over {calls} calls")  # fmt: skip
    ratio = (judged["samples"]["total"] / judged_s) / (plain["samples"]["total"] / plain_s)
    print(f"judge: samples={judged['samples']['total']} judge_calls={calls} ratio_vs_no_judge={ratio:.3f}")


if __name__ == "__main__":
    main()

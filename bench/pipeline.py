"""End-to-end throughput of the whole path on loopback: stand-in teacher, API, one worker, SQLite.

    python bench/pipeline.py --prompts 400 -n 4

Prints samples/s from job creation to the last shard and the stand-in's tokens/s; its last line is
``pipeline: prompts=P samples=S seconds=T samples_per_s=X``. The side-by-side comparison with a bare
client, on a teacher with realistic timing, is bench/throughput.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from service.cli.client import ApiClient
from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL

POLL_S = 0.2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--max-in-flight", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tracemill-bench-") as tmp:
        root = Path(tmp)
        env = {"TRACEMILL_DATA_DIR": str(root), "TRACEMILL_FLUSH_INTERVAL": "0.2"}
        teacher_port, api_port = free_port(), free_port()
        processes = [spawn(["teacher-standin", "--port", str(teacher_port)], root / "teacher.log", env)]
        try:
            wait_http(f"http://127.0.0.1:{teacher_port}/health", processes[0], root / "teacher.log")
            processes.append(spawn(["serve", "--port", str(api_port)], root / "api.log", env))
            wait_http(f"http://127.0.0.1:{api_port}/v1/health", processes[1], root / "api.log")
            processes.append(
                spawn(["worker", "--max-in-flight", str(args.max_in_flight)], root / "worker.log", env)
            )
            client = ApiClient(f"http://127.0.0.1:{api_port}")
            prompts = [
                {"id": str(i), "prompt": f"Compute ({i} + 3) * {i % 17 + 2} - {i % 5}."}
                for i in range(args.prompts)
            ]
            start = time.perf_counter()
            job_id = client.create_job(
                {
                    "teacher": {"base_url": f"http://127.0.0.1:{teacher_port}/v1", "model": DEFAULT_MODEL},
                    "n": args.n,
                    "sampling": {"seed": 1, "max_tokens": 4096},
                    "prompts": prompts,
                }
            )["id"]
            while (job := client.job(job_id))["status"] != "done":
                time.sleep(POLL_S)
            seconds = time.perf_counter() - start
        finally:
            stop(list(reversed(processes)))
    samples = job["samples"]["total"]
    print(f"tokens: {job['tokens']['completion']} completion, {job['tokens']['completion'] / seconds:.0f}/s")
    print(f"acceptance: {job['samples']['acceptance_rate']}")
    print(
        f"pipeline: prompts={args.prompts} samples={samples} seconds={seconds:.2f} "
        f"samples_per_s={samples / seconds:.1f}"
    )


if __name__ == "__main__":
    main()

"""Chaos: kill workers and the API server at random moments and check that no sample is lost or doubled.

    python bench/chaos.py --runs 20

Each run starts the API server and several workers on a fresh PostgreSQL database (a throwaway server
this script starts), against the stand-in teacher injecting 429s, 503s and hangs. While the job runs,
random workers are SIGKILLed (their whole process group, verifier pool included) and restarted, and the
API server, which writes the shards, is killed and restarted once. At the end the script checks: every
prompt has exactly its n samples; every shard the database records reads back with its recorded rows and
no unrecorded file is left; the union of the shards equals the committed samples; and the accepted
samples equal those of a fault-free run with the same seeds. The last line is
``chaos: runs=R kills=K lost=L doubled=D corrupt=C mismatched=M``.

    python bench/chaos.py --hosts 3 --runs 3

runs the job across hosts instead, each a network namespace with its own teacher and workers, and
cuts, kills and partitions them (``bench/chaos_hosts.py``; needs root). Its last line is
``chaos: hosts=H runs=R refused=F lost=L doubled=D corrupt=C``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx

from bench import chaos_hosts
from bench.chaos_checks import JOB_TIMEOUT_S, Accepted, Outcome, check_job, job_body, wait_done
from service.database.db import make_engine
from service.launch.procs import free_port, spawn, stop, wait_http
from service.storage.stores import ShardStore
from tests.pg import create_database, postgres_server


class Stack:
    """The API server and the workers of one run, each restartable."""

    def __init__(self, root: Path, url: str, workers: int) -> None:
        self.root, self.port = root, free_port()
        self.env = {
            "TRACEMILL_DATABASE_URL": url,
            "TRACEMILL_DATA_DIR": str(root),
            "TRACEMILL_LEASE_SECONDS": "2",
            "TRACEMILL_MAX_ATTEMPTS": "50",
            "TRACEMILL_FLUSH_INTERVAL": "0.3",
            "TRACEMILL_SHARD_ROWS": "40",
            "TRACEMILL_ORPHAN_GRACE_S": "0",
        }
        self.api = self._start_api()
        self.workers = [self._start_worker(i) for i in range(workers)]

    def _start_api(self) -> subprocess.Popen[bytes]:
        process = spawn(["serve", "--port", str(self.port)], self.root / "api.log", self.env)
        wait_http(f"http://127.0.0.1:{self.port}/v1/health", process, self.root / "api.log")
        return process

    def _start_worker(self, index: int) -> subprocess.Popen[bytes]:
        args = ["worker", "--max-in-flight", "16", "--verifier-processes", "1"]
        return spawn(args, self.root / f"worker-{index}.log", self.env)

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def kill_worker(self, rng: random.Random) -> None:
        index = rng.randrange(len(self.workers))
        self._kill(self.workers[index])
        self.workers[index] = self._start_worker(index)

    def kill_api(self) -> None:
        self._kill(self.api)
        self.api = self._start_api()

    def stop(self) -> None:
        stop([*self.workers, self.api])


def run_once(
    pg_base: str,
    teacher: str,
    name: str,
    args: argparse.Namespace,
    *,
    rng: random.Random | None,
    reference: Accepted | None,
) -> tuple[Outcome, Accepted]:
    url = create_database(pg_base, name)
    root = Path(tempfile.mkdtemp(prefix=f"tracemill-chaos-{name}-"))
    stack = Stack(root, url, args.workers)
    engine = make_engine(url)
    kills = 0
    try:
        start = time.monotonic()
        response = httpx.post(
            f"http://127.0.0.1:{stack.port}/v1/jobs", json=job_body(teacher, args.prompts, args.n)
        )
        job_id = response.json()["id"]
        next_kill = time.monotonic() + (rng.uniform(0.2, 1.0) if rng else 1e9)
        api_killed = rng is None

        def chaos() -> None:
            nonlocal next_kill, kills, api_killed
            if rng is None or time.monotonic() < next_kill:
                return
            if not api_killed and rng.random() < 0.3:
                stack.kill_api()
                api_killed = True
            else:
                stack.kill_worker(rng)
            kills += 1
            next_kill = time.monotonic() + rng.uniform(0.2, 1.0)

        wait_done(engine, job_id, time.monotonic() + JOB_TIMEOUT_S, chaos)
        if not api_killed:  # make sure the shard writer died at least once this run
            stack.kill_api()
            kills += 1
        seconds = time.monotonic() - start
        accepted, outcome = check_job(engine, ShardStore(root / "shards"), job_id, args.prompts, args.n)
        if reference is not None:
            outcome.mismatched = len(accepted ^ reference)
        outcome.kills, outcome.seconds = kills, seconds
        return outcome, accepted
    finally:
        stack.stop()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hosts", type=int, default=0, help="hosts in network namespaces (at least 3)")
    args = parser.parse_args()
    if args.hosts:
        chaos_hosts.main(args)
        return
    rng = random.Random(args.seed)
    total = Outcome()
    with tempfile.TemporaryDirectory(prefix="tracemill-chaos-") as tmp, postgres_server() as pg_base:
        clean_port, faulty_port = free_port(), free_port()
        delay = ["--ttft", "0.05", "--token-delay", "0.0005"]
        teachers = [
            spawn(["teacher-standin", "--port", str(clean_port), *delay], Path(tmp) / "clean.log"),
            spawn(
                [
                    "teacher-standin",
                    "--port",
                    str(faulty_port),
                    *delay,
                    "--error-429-rate",
                    "0.05",
                    "--error-503-rate",
                    "0.05",
                    "--hang-rate",
                    "0.01",
                    "--fault-seed",
                    str(args.seed),
                ],
                Path(tmp) / "faulty.log",
            ),
        ]
        try:
            for port, process, log in (
                (clean_port, teachers[0], "clean.log"),
                (faulty_port, teachers[1], "faulty.log"),
            ):
                wait_http(f"http://127.0.0.1:{port}/health", process, Path(tmp) / log)
            clean, faulty = f"http://127.0.0.1:{clean_port}/v1", f"http://127.0.0.1:{faulty_port}/v1"
            reference_outcome, reference = run_once(
                pg_base, clean, "reference", args, rng=None, reference=None
            )
            print(
                f"fault-free run: {len(reference)} accepted samples in {reference_outcome.seconds:.1f} s, "
                f"lost={reference_outcome.lost} doubled={reference_outcome.doubled} "
                f"corrupt={reference_outcome.corrupt}"
            )
            for run in range(args.runs):
                outcome, _ = run_once(pg_base, faulty, f"run{run}", args, rng=rng, reference=reference)
                print(
                    f"run {run + 1}: {outcome.seconds:5.1f} s, kills={outcome.kills} lost={outcome.lost} "
                    f"doubled={outcome.doubled} corrupt={outcome.corrupt} mismatched={outcome.mismatched}",
                    flush=True,
                )
                for field in ("kills", "lost", "doubled", "corrupt", "mismatched"):
                    setattr(total, field, getattr(total, field) + getattr(outcome, field))
        finally:
            stop(teachers)
    print(
        f"chaos: runs={args.runs} kills={total.kills} lost={total.lost} doubled={total.doubled} "
        f"corrupt={total.corrupt} mismatched={total.mismatched}"
    )
    sys.exit(1 if total.lost or total.doubled or total.corrupt or total.mismatched else 0)


if __name__ == "__main__":
    main()

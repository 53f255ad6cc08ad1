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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
import pyarrow.parquet as pq
from sqlalchemy import func, select

from service.database.db import make_engine
from service.database.models import Job, Sample, Shard, Task
from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL
from tests.pg import create_database, postgres_server

JOB_TIMEOUT_S = 300


@dataclass
class Outcome:
    kills: int = 0
    lost: int = 0
    doubled: int = 0
    corrupt: int = 0
    mismatched: int = 0
    seconds: float = 0.0


def job_body(teacher: str, prompts: int, n: int) -> dict[str, Any]:
    return {
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL, "timeout_s": 2},
        "n": n,
        "sampling": {"seed": 2024, "max_tokens": 2048},
        "verifiers": [{"name": "format"}, {"name": "math"}],
        "prompts": [
            {
                "id": f"c{i}",
                "prompt": f"Compute ({i} + 11) * {i % 7 + 2}.",
                "reference": str((i + 11) * (i % 7 + 2)),
            }
            for i in range(prompts)
        ],
    }


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


def wait_done(engine: Any, job_id: str, deadline: float, on_tick: Any = None) -> None:
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            status = conn.execute(select(Job.status).where(Job.id == job_id)).scalar_one()
        if status == "done":
            return
        if on_tick is not None:
            on_tick()
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")


def accepted_samples(
    engine: Any, root: Path, job_id: str
) -> tuple[set[tuple[str, int, str]], Outcome, set[int]]:
    """What the shards hold, checked against the database."""
    outcome = Outcome()
    with engine.connect() as conn:
        shards = conn.execute(select(Shard.path, Shard.num_rows).where(Shard.job_id == job_id)).all()
        committed = set(conn.execute(select(Sample.id).where(Sample.job_id == job_id)).scalars())
    seen: Counter[int] = Counter()
    accepted = set()
    for path, rows in shards:
        try:
            table = pq.read_table(root / "shards" / path)
        except Exception:  # an unreadable shard is exactly what this script counts
            outcome.corrupt += 1
            continue
        if table.num_rows != rows:
            outcome.corrupt += 1
        for row in table.select(
            ["sample_id", "prompt_id", "sample_index", "completion", "accepted"]
        ).to_pylist():
            seen[row["sample_id"]] += 1
            if row["accepted"]:
                accepted.add((row["prompt_id"], row["sample_index"], row["completion"]))
    recorded = {p for p, _ in shards}
    outcome.corrupt += sum(
        1
        for f in (root / "shards").rglob("*")
        if f.is_file() and f.relative_to(root / "shards").as_posix() not in recorded
    )
    outcome.doubled += sum(count - 1 for count in seen.values())
    outcome.lost += len(committed - set(seen))
    return accepted, outcome, committed


def run_once(
    pg_base: str,
    teacher: str,
    name: str,
    args: argparse.Namespace,
    *,
    rng: random.Random | None,
    reference: set[tuple[str, int, str]] | None,
) -> tuple[Outcome, set[tuple[str, int, str]]]:
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
        with engine.connect() as conn:
            per_task = conn.execute(
                select(Task.prompt_id, func.count(Sample.id))
                .outerjoin(Sample, Sample.task_id == Task.id)
                .where(Task.job_id == job_id)
                .group_by(Task.prompt_id)
            ).all()
        accepted, outcome, _ = accepted_samples(engine, root, job_id)
        outcome.lost += sum(max(0, args.n - count) for _, count in per_task) + (args.prompts - len(per_task))
        outcome.doubled += sum(max(0, count - args.n) for _, count in per_task)
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
    args = parser.parse_args()
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

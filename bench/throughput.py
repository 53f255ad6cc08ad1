"""Throughput: the whole pipeline against the best a bare client gets from the same teacher, side by side.

    python bench/throughput.py [--scale 1.0] [--regimes realistic,stress] [--databases sqlite,postgresql]
                               [--abort-early]

One stand-in teacher per regime, modelling a continuous-batching engine (``service/standin/batching.py``):
- realistic: 256 sequences at once, log-normal completions of median 1,500 tokens (about 2,000 on
  average, up to the 4,096-token budget), per-token time compressed;
- stress: 1,024 sequences, ~100-token completions, so that orchestration overhead shows.

For each regime and database, with the same prompts, seeds, ``n`` and requests in flight:
(a) the ceiling: a bare asyncio client (aiohttp, the fastest Python client measured here; httpx's
    ceiling is lower) that keeps the requests out and discards the replies; with ``--abort-early``,
    a streaming client that sends each sample as a request of its own and parses its events, as the
    workers then do, so that the ratio is the pipeline's and not the cost of streaming itself;
(b) the pipeline: a job over HTTP to ``tracemill serve``, claimed by workers (one on SQLite, four on
    PostgreSQL), verified (format, math, langmix), committed, written to shards; timed until the
    job is done, its last shard included.
Each is timed after a warm-up round on the same client or processes (one prompt per request slot,
64-token completions), so the figures are those of a running service, not of its first seconds.
The teacher runs pinned to core 0 and everything else (this script, the client, the API, workers,
verifiers, PostgreSQL) to the other cores, the same way for (a) and (b). Printed: samples/s, output
tokens/s, the ratio (b)/(a), the teacher's time-averaged requests in flight over the run (until the
last request was sent) against the configured level, where the pipeline's time and CPU went, and the
teacher tokens per accepted sample with and without early stop. The last line is ``throughput:
realistic_sqlite=R1 realistic_postgres=R2 stress_sqlite=R3 stress_postgres=R4 inflight_share=Z``, Z
the lowest in-flight share of the pipeline runs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
from sqlalchemy import func, select

from bench.bare_client import bare_client
from bench.measure import Run, cpu_seconds, database_cpu, in_flight_share, session_cpu
from bench.regimes import REGIMES, SEED, WARM_UP_MAX_TOKENS, Regime, prompts
from service.database.db import make_engine
from service.database.models import Task
from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL
from tests.pg import create_database, postgres_server

TEACHER_CORE = 0
VERIFIERS = [{"name": "format"}, {"name": "math"}, {"name": "langmix"}]
SUMMARY_NAMES = {"sqlite": "sqlite", "postgresql": "postgres"}  # as the summary lines name the databases


def run_job(client: httpx.Client, body: dict[str, Any], poll_s: float) -> dict[str, Any]:
    """Post a job and wait until the server says it is done; its final state."""
    job_id = client.post("/v1/jobs", json=body).raise_for_status().json()["id"]
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] != "done":
        time.sleep(poll_s)
    return dict(job)


def wait_for_line(log: Path, text: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text(errors="replace")):
        if time.monotonic() > deadline:
            raise SystemExit(f"{log} never said {text!r}")
        time.sleep(0.1)


@contextlib.contextmanager
def teacher(regime: Regime, root: Path) -> Iterator[str]:
    port = free_port()
    log = root / f"teacher-{regime.name}.log"
    process = spawn(["teacher-standin", "--port", str(port), *regime.teacher_args()], log)
    os.sched_setaffinity(process.pid, {TEACHER_CORE})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop([process])


@dataclass
class Pipeline:
    run: Run
    profile: dict[str, float]
    cpu: dict[str, float]
    prompts_with_accepted: int


def pipeline(
    teacher_url: str,
    regime: Regime,
    database_url: str,
    workers: int,
    root: Path,
    *,
    early_stop: int = 0,
    abort_early: bool = False,
) -> Pipeline:
    """One timed job through the API and ``workers`` workers; with ``abort_early``, each sample is
    streamed past the early checks (a request of its own, so the teacher sees n times the requests)."""
    env = {
        "TRACEMILL_DATA_DIR": str(root),
        "TRACEMILL_DATABASE_URL": database_url,
    }
    port = free_port()
    api = spawn(["serve", "--port", str(port)], root / "api.log", env)
    processes = [api]
    per_worker = max(1, regime.in_flight // workers)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", api, root / "api.log")
        for w in range(workers):
            command = ["worker", "--max-in-flight", str(per_worker)]
            processes.append(spawn(command, root / f"worker-{w}.log", env))
        for w in range(workers):  # every worker up and polling before the clock starts
            wait_for_line(root / f"worker-{w}.log", "started (max_in_flight=")
        body: dict[str, Any] = {
            "teacher": {"base_url": f"{teacher_url}/v1", "model": DEFAULT_MODEL},
            "n": regime.n,
            "sampling": {"max_tokens": WARM_UP_MAX_TOKENS, "seed": SEED},
            "verifiers": VERIFIERS,
            "abort_early": abort_early,
            "prompts": prompts(regime.in_flight, prefix="warm-up"),
        }
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            run_job(client, body, poll_s=0.2)
        time.sleep(1)
        before = {p.pid: (session_cpu({p.pid}), cpu_seconds(p.pid)) for p in processes}
        database_before = database_cpu()
        httpx.get(f"{teacher_url}/tracemill/stats", params={"reset": 1})
        body["sampling"]["max_tokens"] = regime.max_tokens
        body["prompts"] = prompts(regime.prompts)
        if early_stop:
            body["stop_after_accepted"] = early_stop
        # Timed from just before the POST to the moment the server marked the job done (its last shard
        # written), so that this script's slow polling neither loads the server nor adds to the time.
        started = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        posted = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            job = run_job(client, body, poll_s=1.0)
            job_id = job["id"]
        seconds = (datetime.datetime.fromisoformat(job["finished_at"]) - started).total_seconds()
        own = {p.pid: cpu_seconds(p.pid) - before[p.pid][1] for p in processes}
        cpu = {
            "api": session_cpu({api.pid}) - before[api.pid][0],
            "workers": sum(own[p.pid] for p in processes[1:]),
            "database": database_cpu() - database_before,
            "verifiers": sum(session_cpu({p.pid}) - before[p.pid][0] - own[p.pid] for p in processes[1:]),
        }
        share, first, last = in_flight_share(teacher_url, regime.requests_out(abort_early))
        span, lead, tail = last - first, first - posted, posted + seconds - last
    finally:
        stop(list(reversed(processes)))
    profile: dict[str, float] = {}
    for w in range(workers):
        line = next(
            line for line in (root / f"worker-{w}.log").read_text().splitlines() if "worker profile" in line
        )
        for key, value in json.loads(line.partition("worker profile ")[2]).items():
            profile[key] = profile.get(key, 0.0) + value
    run = Run(
        job["samples"]["total"],
        job["tokens"]["completion"],
        seconds,
        share,
        span,
        lead,
        tail,
        job["samples"]["accepted"],
    )
    engine = make_engine(database_url)
    with engine.connect() as conn:
        solved = conn.execute(
            select(func.count()).where(Task.job_id == job_id, Task.n_accepted > 0)
        ).scalar_one()
    engine.dispose()
    return Pipeline(run, profile, cpu, solved)


def report(label: str, result: Pipeline, ceiling: Run, level: int) -> tuple[float, float]:
    """Print one pipeline run against the ceiling; returns the ratio and orchestration ms per sample."""
    run, times, cpu = result.run, result.profile, result.cpu
    ratio = run.samples_per_s / ceiling.samples_per_s
    print(
        f"{label:<22} (b) {run.samples_per_s:8.1f} samples/s {run.tokens_per_s:11,.0f} tokens/s  "
        f"ratio {ratio:.3f}  in flight {run.in_flight_share:.3f} of {level}; teacher busy "
        f"{run.teacher_span_s:.2f} s of {run.seconds:.2f} s (ceiling: {ceiling.teacher_span_s:.2f} of "
        f"{ceiling.seconds:.2f}); before the first request {run.lead_s:.2f} s, after the last reply "
        f"{run.tail_s:.2f} s"
    )
    tasks, samples = max(1.0, times["requests"]), max(1.0, times["samples"])
    print(
        f"    time: claim {1000 * times['claim_s'] / max(1.0, times['claims']):.1f} ms/claim "
        f"({times['claims']:.0f} claims), queued for a request slot {times['queued_s'] / tasks:.2f} s/task, "
        f"request {times['request_s'] / tasks:.2f} s/task, verify {1000 * times['verify_s'] / tasks:.1f} "
        f"ms/task, write {1000 * times['write_s'] / tasks:.1f} ms/task"
    )
    orchestration = cpu["api"] + cpu["workers"] + cpu["database"]
    receiving = ceiling.client_cpu_s / ceiling.samples  # what reading these replies costs any client
    print(
        f"    cpu: orchestration {1000 * orchestration / samples:.2f} ms/sample (api "
        f"{1000 * cpu['api'] / samples:.2f}, workers {1000 * cpu['workers'] / samples:.2f}, database "
        f"{1000 * cpu['database'] / samples:.2f}), {1000 * (orchestration / samples - receiving):.2f} "
        f"over the bare client's own; verifiers {1000 * cpu['verifiers'] / samples:.2f} ms/sample",
        flush=True,
    )
    return ratio, 1000 * orchestration / samples


def early_stop_report(full: Pipeline, stopped: Pipeline) -> None:
    """Teacher tokens per sample an export keeping one per prompt would use, with and without early stop."""
    per_kept_full = full.run.tokens / max(1, full.prompts_with_accepted)
    per_kept_stopped = stopped.run.tokens / max(1, stopped.prompts_with_accepted)
    print(
        f"early stop (stop_after_accepted=1): teacher tokens per kept sample {per_kept_stopped:,.0f} against "
        f"{per_kept_full:,.0f} without ({1 - per_kept_stopped / per_kept_full:.0%} fewer); prompts with an "
        f"accepted sample {stopped.prompts_with_accepted} against {full.prompts_with_accepted}; "
        f"{stopped.run.samples} samples drawn against {full.run.samples}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of prompts")
    parser.add_argument("--regimes", default="realistic,stress")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--abort-early", action="store_true", help="the pipeline's jobs stream with early abort"
    )
    args = parser.parse_args()
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        raise SystemExit("needs two cores: one for the teacher, the rest for the client side")
    os.sched_setaffinity(0, cores - {TEACHER_CORE})  # inherited by everything started from here
    databases = args.databases.split(",")
    ratios: dict[str, float] = {}
    orchestration: dict[str, float] = {}  # CPU ms per sample of the API, workers and database
    shares: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tracemill-throughput-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        pg = stack.enter_context(postgres_server()) if "postgresql" in databases else None
        for name in args.regimes.split(","):
            regime = REGIMES[name]
            regime = Regime(**{**regime.__dict__, "prompts": max(8, int(regime.prompts * args.scale))})
            level = regime.requests_out(args.abort_early)
            with teacher(regime, root) as url:
                ceiling = bare_client(url, regime, args.abort_early)
                print(
                    f"{name:<22} (a) {ceiling.samples_per_s:8.1f} samples/s {ceiling.tokens_per_s:11,.0f} "
                    f"tokens/s  in flight {ceiling.in_flight_share:.3f} of {level}; client cpu "
                    f"{1000 * ceiling.client_cpu_s / ceiling.samples:.2f} ms/sample",
                    flush=True,
                )
                for database in databases:
                    folder = root / f"{name}-{database}"
                    if database == "sqlite":
                        url_db, workers = f"sqlite:///{folder / 'tracemill.db'}", 1
                    else:
                        assert pg is not None
                        url_db, workers = create_database(pg, f"{name}_{database}"), 4
                    result = pipeline(url, regime, url_db, workers, folder, abort_early=args.abort_early)
                    key = f"{name}_{SUMMARY_NAMES[database]}"
                    ratios[key], orchestration[key] = report(
                        f"{name} {database} x{workers}", result, ceiling, level
                    )
                    shares.append(result.run.in_flight_share)
                    if name == "realistic" and database == "sqlite":
                        early = url_db.replace(".db", "-early.db")
                        early_stop_report(
                            result,
                            pipeline(
                                url, regime, early, 1, folder, early_stop=1, abort_early=args.abort_early
                            ),
                        )
    print("orchestration cpu ms/sample: " + " ".join(f"{k}={v:.2f}" for k, v in orchestration.items()))
    summary = " ".join(f"{key}={value:.3f}" for key, value in ratios.items())
    print(f"throughput: {summary} inflight_share={min(shares):.3f}")


if __name__ == "__main__":
    main()

"""Samples list speed: pages of a 200,000-sample job, served by a real ``tracemill serve``.

    python bench/ui.py [--samples 200000] [--database sqlite|postgresql|both]

A job of 50,000 prompts x 4 samples (three verdicts each, 1.5 kB completions, 38% accepted) is written
straight into a fresh database; then each page below is fetched over HTTP on 127.0.0.1, cold once and
then five times, and the slowest of the five is printed. Pages: the first, deep ones by keyset cursor,
the previous-page link, each filter (status, verifier, a common and a rare reason, a prompt id) and the
sample page; search (a substring scan of prompts and completions) is printed beside them. The last
line is ``ui: samples=N worst_page_ms=X worst_search_ms=Y`` over the databases run.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
from sqlalchemy import func, insert, select, update

from bench.synthetic import finished_job
from service.database.db import make_engine, upgrade_schema, writing
from service.database.models import Sample, Task, Verdict, VerdictCount
from service.launch.procs import free_port, spawn, stop, wait_http
from tests.pg import create_database, postgres_server

PER_PROMPT = 4
CHUNK = 20_000
REPEATS = 5
THINK = "Let me work through this step by step, checking each intermediate result twice. " * 18


def _verdicts(sample_id: int, i: int) -> list[dict[str, object]]:
    """math rejects 3 in 8, langmix 1 in 5, length 1 in 100 (rare): about 38% accepted in all."""
    outcomes = [
        ("math", i % 8 < 5, "math:wrong_answer", {"extracted": str(i), "reference": "0"}),
        ("langmix", i % 5 != 3, "langmix:mixed", {"foreign_share": 0.2}),
        ("length", i % 100 != 7, "length:truncated", {"tokens": 400}),
    ]
    return [
        {
            "sample_id": sample_id,
            "verifier": verifier,
            "accepted": ok,
            "reason": None if ok else reason,
            "details": details,
        }
        for verifier, ok, reason, details in outcomes
    ]


def build(url: str, samples: int) -> str:
    upgrade_schema(url)
    engine = make_engine(url)
    prompts = samples // PER_PROMPT
    verifiers = [{"name": "math"}, {"name": "langmix"}, {"name": "length"}]
    job_id = finished_job(engine, prompts, PER_PROMPT, verifiers=verifiers)
    with writing(engine) as conn:
        task_ids = list(
            conn.execute(select(Task.id).where(Task.job_id == job_id).order_by(Task.id)).scalars()
        )
    now = datetime.datetime(2026, 1, 1)
    counts: Counter[tuple[object, object, object]] = Counter()
    for start in range(0, samples, CHUNK):
        rows, verdicts = [], []
        for i in range(start, min(samples, start + CHUNK)):
            verdict_rows = _verdicts(i + 1, i)
            counts.update((v["verifier"], v["accepted"], v["reason"] or "") for v in verdict_rows)
            accepted = all(v["accepted"] for v in verdict_rows)
            reason = next((v["reason"] for v in verdict_rows if not v["accepted"]), None)
            rows.append(
                {
                    "id": i + 1,
                    "task_id": task_ids[i // PER_PROMPT],
                    "job_id": job_id,
                    "sample_index": i % PER_PROMPT,
                    "attempt": 1,
                    "completion": f"<think>{THINK} token{i}x</think> The answer is {i}.",
                    "answer": f"The answer is {i}.",
                    "finish_reason": "stop",
                    "completion_tokens": 400,
                    "accepted": accepted,
                    "reason": reason,
                    "created_at": now,
                }
            )
            verdicts += verdict_rows
        with writing(engine) as conn:
            conn.execute(insert(Sample), rows)
            conn.execute(insert(Verdict), verdicts)
    accepted = select(func.count()).where(Sample.task_id == Task.id, Sample.accepted).scalar_subquery()
    with writing(engine) as conn:
        conn.execute(update(Task).where(Task.job_id == job_id).values(n_accepted=accepted))
        conn.execute(
            insert(VerdictCount),
            [
                {"job_id": job_id, "verifier": verifier, "accepted": ok, "reason": reason, "samples": n}
                for (verifier, ok, reason), n in counts.items()
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:  # what autovacuum does within a minute of a bulk write
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    engine.dispose()
    return job_id


def timed(client: httpx.Client, path: str) -> float:
    """The slowest of REPEATS fetches after a cold one, in milliseconds."""
    client.get(path).raise_for_status()
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return max(times)


@contextmanager
def serving(url: str, root: Path) -> Iterator[str]:
    port = free_port()
    # No flusher passes: the bench's samples were written straight to the tables, with no shards to make.
    env = {"TRACEMILL_DATA_DIR": str(root), "TRACEMILL_DATABASE_URL": url, "TRACEMILL_FLUSH_INTERVAL": "3600"}
    log = root / f"serve-{port}.log"
    process = spawn(["serve", "--port", str(port)], log, env)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop([process])


def measure(url: str, root: Path, samples: int, label: str) -> tuple[float, float]:
    started = time.perf_counter()
    job_id = build(url, samples)
    print(f"{label}: built {samples} samples in {time.perf_counter() - started:.0f} s", flush=True)
    base = f"/ui/jobs/{job_id}/samples"
    pages = {
        "first page": base,
        "page at the middle": f"{base}?after={samples // 2}",
        "last page": f"{base}?after={samples - 20}",
        "previous page": f"{base}?before={samples // 2}",
        "rejected": f"{base}?status=rejected&after={samples // 3}",
        "accepted": f"{base}?status=accepted",
        "rejected by langmix": f"{base}?verifier=langmix",
        "reason (common)": f"{base}?reason=math:wrong_answer&after={samples // 2}",
        "reason (rare, 1%)": f"{base}?reason=length:truncated",
        "prompt id": f"{base}?prompt_id=p{samples // 8}",
        "sample page": f"{base}/{samples // 2}?status=rejected",
    }
    searches = {
        "search (common word)": f"{base}?q=answer",
        "search (one sample)": f"{base}?q=token{samples - 5}x",
    }
    results = {}
    with serving(url, root) as api, httpx.Client(base_url=api, timeout=60) as client:
        for name, path in {**pages, **searches}.items():
            results[name] = timed(client, path)
            print(f"  {name:<22} {results[name]:7.1f} ms", flush=True)
        job_page = timed(client, f"/ui/jobs/{job_id}")
        print(f"  {'(job page, charts)':<22} {job_page:7.1f} ms")
    worst_page = max(results[name] for name in pages)
    worst_search = max(results[name] for name in searches)
    print(
        f"{label}: worst page {worst_page:.1f} ms (median {statistics.median(results[n] for n in pages):.1f})"
    )
    return worst_page, worst_search


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    worst: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="tracemill-ui-") as tmp:
        root = Path(tmp)
        if args.database in ("sqlite", "both"):
            worst.append(measure(f"sqlite:///{root / 'ui.db'}", root, args.samples, "sqlite"))
        if args.database in ("postgresql", "both"):
            with postgres_server() as pg:
                worst.append(measure(create_database(pg, "ui"), root, args.samples, "postgresql"))
    page, search = max(w[0] for w in worst), max(w[1] for w in worst)
    print(f"ui: samples={args.samples} worst_page_ms={page:.0f} worst_search_ms={search:.0f}")


if __name__ == "__main__":
    main()

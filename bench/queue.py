"""Queue throughput: task claims per second with contending workers, and accepting a 100,000-prompt job.

    python bench/queue.py [--tasks 40000] [--batch 16]

Claims: the queue is filled, then W worker processes claim batches in a loop until it is empty
(SQLite with 4 workers, PostgreSQL with 8, a throwaway server this script starts). Accept: one
``POST /v1/jobs`` of 100,000 prompts to a real ``tracemill serve`` on each database, timed end to end.
The last line is ``queue: sqlite_claims_per_s=A postgres_claims_per_s=B sqlite_accept_100k_s=C
postgres_accept_100k_s=D``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx

from service.database import jobs, queue
from service.database.db import make_engine, upgrade_schema
from service.launch.procs import free_port, spawn, stop, wait_http
from service.schemas import JobIn
from tests.pg import create_database, postgres_server

ACCEPT_PROMPTS = 100_000


def body(prompts: int) -> dict[str, object]:
    return {
        "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        "n": 4,
        "prompts": [
            {"id": f"p{i}", "prompt": f"Compute {i} + {i}.", "reference": str(2 * i)} for i in range(prompts)
        ],
    }


def claimer(url: str, owner: str, batch: int, counts: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    engine = make_engine(url)
    claimed = 0
    while got := queue.claim(engine, owner, batch, 60, max_attempts=5):
        claimed += len(got)
    counts.put(claimed)
    engine.dispose()


def claims_per_second(url: str, tasks: int, workers: int, batch: int) -> float:
    upgrade_schema(url)
    engine = make_engine(url)
    jobs.create_job(engine, JobIn.model_validate(body(tasks)))
    engine.dispose()
    counts: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    processes = [
        multiprocessing.Process(target=claimer, args=(url, f"w{i}", batch, counts)) for i in range(workers)
    ]
    start = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - start
    claimed = sum(counts.get() for _ in processes)
    assert claimed == tasks, f"claimed {claimed} of {tasks}: a task was claimed twice or never"
    return claimed / seconds


def accept_seconds(url: str, root: Path) -> float:
    port = free_port()
    server = spawn(
        ["serve", "--port", str(port)],
        root / "api.log",
        {"TRACEMILL_DATABASE_URL": url, "TRACEMILL_DATA_DIR": str(root)},
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", server, root / "api.log")
        payload = json.dumps(body(ACCEPT_PROMPTS)).encode()
        start = time.perf_counter()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/jobs",
            content=payload,
            timeout=120,
            headers={"content-type": "application/json"},
        )
        seconds = time.perf_counter() - start
        assert response.status_code == 201 and response.json()["num_tasks"] == ACCEPT_PROMPTS, response.text
        return seconds
    finally:
        stop([server])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracemill-queue-") as tmp, postgres_server() as pg_base:
        root = Path(tmp)
        sqlite_claims = claims_per_second(f"sqlite:///{root / 'claims.db'}", args.tasks, 4, args.batch)
        print(f"sqlite, 4 workers:     {sqlite_claims:8.0f} claims/s (batches of {args.batch})", flush=True)
        pg_claims = claims_per_second(create_database(pg_base, "claims"), args.tasks, 8, args.batch)
        print(f"postgresql, 8 workers: {pg_claims:8.0f} claims/s (batches of {args.batch})", flush=True)
        (root / "s").mkdir()
        (root / "p").mkdir()
        sqlite_accept = accept_seconds(f"sqlite:///{root / 'accept.db'}", root / "s")
        pg_accept = accept_seconds(create_database(pg_base, "accept"), root / "p")
        print(
            f"accept {ACCEPT_PROMPTS} prompts over HTTP: sqlite {sqlite_accept:.2f} s, "
            f"postgresql {pg_accept:.2f} s"
        )
    print(
        f"queue: sqlite_claims_per_s={sqlite_claims:.0f} postgres_claims_per_s={pg_claims:.0f} "
        f"sqlite_accept_100k_s={sqlite_accept:.2f} postgres_accept_100k_s={pg_accept:.2f}"
    )


if __name__ == "__main__":
    main()

"""A model server that is down when a job starts and comes up once the job has paused for it: the
shared course of the down-teacher and down-judge tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from service.database import jobs
from service.launch.procs import spawn, stop, wait_http
from service.responses import JobOut
from workers.loop import Worker


def pause_then_return(
    engine: Engine,
    worker: Worker,
    job_id: str,
    *,
    port: int,
    log: Path,
    tasks: int,
    on_pause: Callable[[JobOut], None],
    deadline_s: float = 90,
) -> None:
    """Run ``worker`` until the job pauses, check it with ``on_pause``, start a stand-in on ``port``,
    and run on until ``tasks`` tasks are done."""
    server: list = []  # type: ignore[type-arg]

    async def scenario() -> None:
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + deadline_s
        while jobs.get_job(engine, job_id).status != "paused":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        on_pause(jobs.get_job(engine, job_id))
        server.append(spawn(["teacher-standin", "--port", str(port)], log))
        wait_http(f"http://127.0.0.1:{port}/health", server[0], log)
        while jobs.get_job(engine, job_id).tasks.done < tasks:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        worker.stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        stop(server)

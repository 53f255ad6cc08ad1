"""The worker loop in process: a teacher that is down pauses the job, which resumes when it returns;
SIGTERM-style stops release what is in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service import jobs, shards
from service.procs import free_port, spawn, stop, wait_http
from service.schemas import JobIn
from service.standin import DEFAULT_MODEL
from verifiers.runner import VerifierRunner
from workers.loop import Worker


@pytest.fixture(scope="module")
def runner() -> Iterator[VerifierRunner]:
    runner = VerifierRunner(processes=1)
    yield runner
    runner.close()


def _job(engine: Engine, url: str, prompts: int = 4) -> str:
    return jobs.create_job(
        engine,
        JobIn.model_validate(
            {
                "teacher": {"base_url": url, "model": DEFAULT_MODEL},
                "n": 2,
                "sampling": {"seed": 3},
                "prompts": [{"id": f"p{i}", "prompt": f"Compute {i} * 3."} for i in range(prompts)],
            }
        ),
    ).id


def test_a_down_teacher_pauses_the_job_and_its_return_resumes_it(
    engine: Engine, runner: VerifierRunner, tmp_path: Path
) -> None:
    port = free_port()
    job_id = _job(engine, f"http://127.0.0.1:{port}/v1")
    worker = Worker(engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=4, paused_probe_s=0.3)
    teacher: list = []  # type: ignore[type-arg]

    async def scenario() -> None:
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 60
        while jobs.get_job(engine, job_id).status != "paused":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        paused = jobs.get_job(engine, job_id)
        assert paused.status_reason and paused.status_reason.startswith("teacher unreachable")
        assert paused.tasks.failed == 0  # no attempt was burnt
        log = tmp_path / "standin.log"
        teacher.append(spawn(["teacher-standin", "--port", str(port)], log))
        wait_http(f"http://127.0.0.1:{port}/health", teacher[0], log)
        while jobs.get_job(engine, job_id).tasks.done < 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        worker.stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        stop(teacher)
    shards.flush_all(engine, tmp_path, shard_rows=100)
    job = jobs.get_job(engine, job_id)
    assert (job.status, job.tasks.done, job.samples.total) == ("done", 4, 8)


def test_stopping_releases_in_flight_tasks(engine: Engine, runner: VerifierRunner, tmp_path: Path) -> None:
    url_port = free_port()
    log = tmp_path / "slow.log"
    slow = spawn(["teacher-standin", "--port", str(url_port), "--ttft", "30"], log)
    try:
        wait_http(f"http://127.0.0.1:{url_port}/health", slow, log)
        job_id = _job(engine, f"http://127.0.0.1:{url_port}/v1", prompts=3)
        worker = Worker(
            engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=8, shutdown_grace_s=0.5
        )

        async def scenario() -> None:
            task = asyncio.create_task(worker.run())
            while jobs.get_job(engine, job_id).tasks.running < 3:
                await asyncio.sleep(0.1)
            worker.stop()
            await task

        asyncio.run(scenario())
    finally:
        stop([slow])
    job = jobs.get_job(engine, job_id)
    assert (job.tasks.queued, job.tasks.running) == (3, 0)

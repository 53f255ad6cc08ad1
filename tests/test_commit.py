"""Group commits (workers/commit.py) on a real database: who lingers, who goes at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import Engine, func, select

from service.database import queue
from service.database.db import reading
from service.database.finishing import NewSample
from service.database.models import Task
from service.errors import LeaseLost
from tests.conftest import simple_job
from workers import commit
from workers.commit import LINGER_S, Committer

LEASE = 60.0


def _sample() -> list[NewSample]:
    return [NewSample(0, "<think>t</think> 1", "1", "stop", 5)]


def _done(engine: Engine) -> int:
    with reading(engine) as conn:
        return int(conn.execute(select(func.count()).where(Task.status == "done")).scalar_one())


def test_tasks_that_finish_while_others_are_coming_share_one_transaction(engine: Engine) -> None:
    simple_job(engine, 4)
    tasks = queue.claim(engine, "w1", 4, LEASE, max_attempts=3)
    coming = {task.id for task in tasks}  # claimed and not yet committing

    async def scenario() -> tuple[Committer, float, int]:
        committer = Committer(engine, "w1", lambda: len(coming))
        commits = []
        for task in tasks[:3]:
            coming.discard(task.id)
            commits.append(asyncio.create_task(committer.commit(task, _sample(), 1)))
            await asyncio.sleep(0.05)
        lingering = _done(engine)  # the fourth task is still coming: the three wait for it
        started = time.perf_counter()
        coming.discard(tasks[3].id)  # it ends without committing (failed, say)
        committer.poke()
        await asyncio.gather(*commits)
        waited = time.perf_counter() - started
        await committer.close()
        return committer, waited, lingering

    committer, waited, lingering = asyncio.run(scenario())
    assert lingering == 0
    assert _done(engine) == 3 and committer.batches == 1
    assert waited < LINGER_S / 2  # the poke sent the batch at once, not at the end of the linger


def test_the_last_task_expected_commits_at_once(engine: Engine) -> None:
    simple_job(engine, 1)
    [task] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)

    async def scenario() -> float:
        committer = Committer(engine, "w1", lambda: 0)
        started = time.perf_counter()
        await committer.commit(task, _sample(), 1)
        await committer.close()
        return time.perf_counter() - started

    assert asyncio.run(scenario()) < LINGER_S / 2
    assert _done(engine) == 1


def test_a_batch_whose_others_never_come_goes_after_the_linger(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "LINGER_S", 0.3)
    simple_job(engine, 2)
    first, _ = queue.claim(engine, "w1", 2, LEASE, max_attempts=3)

    async def scenario() -> float:
        committer = Committer(engine, "w1", lambda: 1)  # the other task is forever on its way
        started = time.perf_counter()
        await committer.commit(first, _sample(), 1)
        await committer.close()
        return time.perf_counter() - started

    assert asyncio.run(scenario()) >= 0.3
    assert _done(engine) == 1


def test_a_late_commit_is_refused_by_the_fence_and_logged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    simple_job(engine, 2)
    kept, taken = queue.claim(engine, "w1", 2, LEASE, max_attempts=3)
    queue.release(engine, "w1", [taken.id])  # as when the lease expired and the queue took it back

    async def scenario() -> list[BaseException | None]:
        committer = Committer(engine, "w1", lambda: 0)
        outcomes = await asyncio.gather(
            committer.commit(kept, _sample(), 1),
            committer.commit(taken, _sample(), 1),
            return_exceptions=True,
        )
        await committer.close()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes[0] is None and isinstance(outcomes[1], LeaseLost)
    assert _done(engine) == 1
    assert "the fence refused the commit of 1 of 2 tasks" in caplog.text

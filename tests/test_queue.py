"""The queue's guarantees, each broken on purpose, on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from service.database import finishing, jobs, queue
from service.database.db import utcnow, writing
from service.database.finishing import NewSample
from service.database.models import Sample, Task, Verdict, VerdictCount
from service.errors import JobStateConflict, LeaseLost
from service.schemas import JobIn
from tests.conftest import simple_job
from verifiers.base import NamedVerdict

LEASE = 30.0


def _sample(index: int, accepted: bool = True) -> NewSample:
    verdict = NamedVerdict("format", accepted, None if accepted else "format:missing_think", {})
    return NewSample(index, f"<think>x</think> {index}", str(index), "stop", 3, (verdict,))


def _expire(engine: Engine, task_id: int) -> None:
    with writing(engine) as conn:
        conn.execute(
            update(Task).where(Task.id == task_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def test_claim_leases_a_batch_oldest_first(engine: Engine) -> None:
    simple_job(engine, prompts=5)
    claimed = queue.claim(engine, "w1", 3, LEASE, max_attempts=3)
    assert [t.prompt_id for t in claimed] == ["p0", "p1", "p2"]
    assert all(t.attempt == 1 for t in claimed)
    rest = queue.claim(engine, "w2", 10, LEASE, max_attempts=3)
    assert [t.prompt_id for t in rest] == ["p3", "p4"]
    assert queue.claim(engine, "w3", 10, LEASE, max_attempts=3) == []


def test_finish_commits_samples_and_verdicts_once(engine: Engine) -> None:
    simple_job(engine, prompts=1)
    [task] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    finishing.finish(engine, task, "w1", [_sample(0), _sample(1, accepted=False)], prompt_tokens=7)
    with engine.connect() as conn:
        row = conn.execute(
            select(Task.status, Task.n_samples, Task.n_accepted).where(Task.id == task.id)
        ).one()
        assert tuple(row) == ("done", 2, 1)
        reasons = conn.execute(select(Sample.reason).order_by(Sample.sample_index)).scalars().all()
        assert reasons == [None, "format:missing_think"]
    with pytest.raises(LeaseLost):  # finishing twice matches no running lease
        finishing.finish(engine, task, "w1", [_sample(0)], prompt_tokens=7)


def test_the_database_refuses_a_doubled_sample_key(engine: Engine) -> None:
    simple_job(engine, prompts=1)
    [task] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    finishing.finish(engine, task, "w1", [_sample(0)], prompt_tokens=1)
    with pytest.raises(IntegrityError), writing(engine) as conn:
        conn.execute(
            insert(Sample).values(
                task_id=task.id,
                job_id=task.job_id,
                sample_index=0,
                attempt=2,
                completion="dup",
                answer=None,
                finish_reason="stop",
                completion_tokens=1,
                accepted=True,
                reason=None,
                created_at=utcnow(),
            )
        )


def test_a_batch_commits_each_task_whose_lease_holds(engine: Engine) -> None:
    simple_job(engine, prompts=3)
    first, lost, third = queue.claim(engine, "w1", 3, LEASE, max_attempts=3)
    _expire(engine, lost.id)
    [taken] = queue.claim(engine, "w2", 1, LEASE, max_attempts=3)
    assert taken.id == lost.id
    outcomes = finishing.finish_many(
        engine,
        "w1",
        [finishing.Finished(t, [_sample(0), _sample(1, accepted=False)], 5) for t in (first, lost, third)],
    )
    assert [type(o) for o in outcomes] == [type(None), LeaseLost, type(None)]
    with engine.connect() as conn:
        query = select(Sample.task_id, Sample.sample_index, Sample.reason).order_by(Sample.id)
        rows = conn.execute(query).all()
        assert [tuple(r) for r in rows] == [
            (first.id, 0, None),
            (first.id, 1, "format:missing_think"),
            (third.id, 0, None),
            (third.id, 1, "format:missing_think"),
        ]
        statuses = dict(conn.execute(select(Task.id, Task.status)).all())
        assert statuses == {first.id: "done", lost.id: "running", third.id: "done"}
        verdicts = conn.execute(select(func.count()).select_from(Verdict)).scalar_one()
        assert verdicts == 4


def test_verdict_counts_add_up_what_concurrent_batches_commit_and_nothing_of_a_lost_lease(
    engine: Engine,
) -> None:
    """Four workers commit batches for one job at once (on PostgreSQL, each batch's count rows stay
    locked until it commits): no batch deadlocks or is lost, and the counts are those of the verdicts
    committed, not of the task whose lease was lost."""
    job_id = simple_job(engine, prompts=41)
    lost = queue.claim(engine, "late", 1, LEASE, max_attempts=3)[0]
    _expire(engine, lost.id)

    def verdicts(index: int) -> tuple[NamedVerdict, ...]:
        math_ok = index % 3 == 0
        return (
            NamedVerdict("format", index % 2 == 0, None if index % 2 == 0 else "format:missing_think", {}),
            NamedVerdict("math", math_ok, None if math_ok else "math:wrong", {"expected": "1"}),
        )

    def work(owner: str) -> None:
        while tasks := queue.claim(engine, owner, 2, LEASE, max_attempts=3):
            batch = [
                finishing.Finished(t, [replace(_sample(i), verdicts=verdicts(i)) for i in range(3)], 1)
                for t in tasks
            ]
            assert finishing.finish_many(engine, owner, batch) == [None] * len(tasks)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, ["w1", "w2", "w3", "w4"]))
    with pytest.raises(LeaseLost):  # the task its first owner lost was done by another
        finishing.finish(engine, lost, "late", [_sample(0)], prompt_tokens=1)

    with engine.connect() as conn:
        counted = conn.execute(
            select(VerdictCount.verifier, VerdictCount.accepted, VerdictCount.reason, VerdictCount.samples)
            .where(VerdictCount.job_id == job_id)
            .order_by(VerdictCount.verifier, VerdictCount.accepted, VerdictCount.reason)
        ).all()
        reason = func.coalesce(Verdict.reason, literal_column("''")).label("reason")
        stored = conn.execute(
            select(Verdict.verifier, Verdict.accepted, reason, func.count())
            .group_by(Verdict.verifier, Verdict.accepted, reason)
            .order_by(Verdict.verifier, Verdict.accepted, reason)
        ).all()
    # 41 tasks of 3 samples: format rejects sample 1 of each, math all but sample 0
    assert (
        [tuple(row) for row in counted]
        == [tuple(row) for row in stored]
        == [
            ("format", False, "format:missing_think", 41),
            ("format", True, "", 82),
            ("math", False, "math:wrong", 82),
            ("math", True, "", 41),
        ]
    )
    job = jobs.get_job(engine, job_id)
    assert [(v.name, v.accepted, v.rejected) for v in job.verifiers] == [("format", 82, 41), ("math", 41, 82)]
    assert job.rejection_reasons == {"math:wrong": 82, "format:missing_think": 41}


def test_a_taken_over_lease_is_fenced(engine: Engine) -> None:
    simple_job(engine, prompts=1)
    [stale] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    _expire(engine, stale.id)
    [fresh] = queue.claim(engine, "w2", 1, LEASE, max_attempts=3)
    assert (fresh.id, fresh.attempt) == (stale.id, 2)
    for write in (
        lambda: finishing.finish(engine, stale, "w1", [_sample(0)], prompt_tokens=1),
        lambda: queue.retry(engine, stale, "w1", "boom", delay_s=0, max_attempts=3),
        lambda: queue.fail(engine, stale, "w1", "boom"),
    ):
        with pytest.raises(LeaseLost):
            write()
    assert queue.renew(engine, "w1", LEASE) == set()
    finishing.finish(engine, fresh, "w2", [_sample(0), _sample(1)], prompt_tokens=1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Sample)).scalar_one() == 2


def test_same_owner_stale_attempt_is_fenced(engine: Engine) -> None:
    simple_job(engine, prompts=1)
    [first] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    _expire(engine, first.id)
    [second] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    with pytest.raises(LeaseLost):
        finishing.finish(engine, first, "w1", [_sample(0)], prompt_tokens=1)
    finishing.finish(engine, second, "w1", [_sample(0)], prompt_tokens=1)


def test_renew_extends_only_the_owners_leases(engine: Engine) -> None:
    simple_job(engine, prompts=3)
    mine = queue.claim(engine, "w1", 2, 1.0, max_attempts=3)
    queue.claim(engine, "w2", 1, 1.0, max_attempts=3)
    assert queue.renew(engine, "w1", LEASE) == {t.id for t in mine}
    with engine.connect() as conn:
        expiries = dict(
            conn.execute(select(Task.owner, func.max(Task.lease_expires_at)).group_by(Task.owner)).all()
        )
    assert expiries["w1"] > expiries["w2"] + timedelta(seconds=20)


def test_expired_leases_return_to_the_queue_then_fail_when_attempts_run_out(engine: Engine) -> None:
    simple_job(engine, prompts=1)
    for attempt in (1, 2):
        [task] = queue.claim(engine, f"w{attempt}", 1, LEASE, max_attempts=2)
        assert task.attempt == attempt
        _expire(engine, task.id)
    assert queue.claim(engine, "w3", 1, LEASE, max_attempts=2) == []
    with engine.connect() as conn:
        status, error = conn.execute(select(Task.status, Task.last_error)).one()
    assert status == "failed"
    assert "lease expired" in error


def test_retry_backs_off_and_fails_after_the_last_attempt(engine: Engine) -> None:
    simple_job(engine, prompts=1)
    [task] = queue.claim(engine, "w1", 1, LEASE, max_attempts=2)
    assert queue.retry(engine, task, "w1", "HTTP 503", delay_s=3600, max_attempts=2) == "queued"
    assert queue.claim(engine, "w1", 1, LEASE, max_attempts=2) == []  # not before the backoff
    with writing(engine) as conn:
        conn.execute(update(Task).values(not_before=utcnow()))
    [again] = queue.claim(engine, "w1", 1, LEASE, max_attempts=2)
    assert queue.retry(engine, again, "w1", "HTTP 503", delay_s=0, max_attempts=2) == "failed"
    with engine.connect() as conn:
        assert conn.execute(select(Task.last_error)).scalar_one() == "attempt 2 of 2: HTTP 503"


def test_release_hands_tasks_back_without_spending_an_attempt(engine: Engine) -> None:
    simple_job(engine, prompts=2)
    claimed = queue.claim(engine, "w1", 2, LEASE, max_attempts=3)
    assert queue.release(engine, "w1", [t.id for t in claimed]) == 2
    again = queue.claim(engine, "w2", 2, LEASE, max_attempts=3)
    assert [t.attempt for t in again] == [1, 1]
    with pytest.raises(LeaseLost):
        finishing.finish(engine, claimed[0], "w1", [_sample(0)], prompt_tokens=1)


def test_draft_and_cancelled_tasks_are_never_claimed(engine: Engine) -> None:
    draft = jobs.create_job(
        engine,
        JobIn.model_validate(
            {
                "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                "start": False,
                "prompts": [{"id": "d", "prompt": "x"}],
            }
        ),
    ).id
    cancelled = simple_job(engine, prompts=2)
    jobs.cancel_job(engine, cancelled)
    assert queue.claim(engine, "w1", 10, LEASE, max_attempts=3) == []
    jobs.start_job(engine, draft)
    assert [t.prompt_id for t in queue.claim(engine, "w1", 10, LEASE, max_attempts=3)] == ["d"]


def test_bulk_enqueued_rows_read_back_as_sqlalchemy_wrote_them(engine: Engine) -> None:
    """Tasks are inserted past SQLAlchemy's row processing; their values must still compare and decode."""
    job_id = simple_job(engine, prompts=3)
    with engine.connect() as conn:
        not_before, prompt, messages, tests = conn.execute(
            select(Task.not_before, Task.prompt, Task.messages, Task.tests)
            .where(Task.job_id == job_id)
            .limit(1)
        ).one()
        ready = conn.execute(
            select(func.count()).select_from(Task).where(Task.not_before <= utcnow())
        ).scalar_one()
    assert not_before <= utcnow() and ready == 3
    assert (prompt, messages, tests) == ("Compute 0 + 1.", None, None)


def test_pause_for_teacher_holds_the_job_without_spending_attempts(engine: Engine) -> None:
    job_id = simple_job(engine, prompts=3)
    [task] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    queue.pause_for_teacher(engine, task, "w1", "teacher unreachable: connection refused")
    job = jobs.get_job(engine, job_id)
    assert (job.status, job.status_reason) == ("paused", "teacher unreachable: connection refused")
    assert job.tasks.paused == 3
    assert queue.claim(engine, "w1", 10, LEASE, max_attempts=3) == []
    assert [j for j, _ in jobs.paused_for_teacher(engine)] == [job_id]
    jobs.resume_job(engine, job_id)
    again = queue.claim(engine, "w2", 10, LEASE, max_attempts=3)
    assert sorted(t.attempt for t in again) == [1, 1, 1]
    with pytest.raises(LeaseLost):
        queue.pause_for_teacher(engine, task, "w1", "late")


def test_resume_a_cancelled_job(engine: Engine) -> None:
    job_id = simple_job(engine, prompts=2)
    [task] = queue.claim(engine, "w1", 1, LEASE, max_attempts=3)
    jobs.cancel_job(engine, job_id)
    finishing.finish(engine, task, "w1", [_sample(0)], prompt_tokens=1)  # a running task finishes and counts
    jobs.resume_job(engine, job_id)
    assert [t.prompt_id for t in queue.claim(engine, "w2", 10, LEASE, max_attempts=3)] == ["p1"]
    with pytest.raises(JobStateConflict):
        jobs.resume_job(engine, job_id)

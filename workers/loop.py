"""The worker loop: keep ``max_in_flight`` teacher requests out at all times, stop cleanly.

Tasks are claimed ahead (``prefetch`` beyond the requests out), so that when a reply comes the next
request goes at once, without a round trip to the database; replies are verified and committed while
the next requests are out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import resource
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from service.database import hosts, jobs, queue
from service.database.db import reading
from service.database.models import Job
from service.database.queue import ClaimedTask
from service.errors import JobStateConflict, LeaseLost
from service.security.teachers import TeacherPolicy
from verifiers.runner import VerifierRunner
from workers.commit import MAX_BATCH
from workers.lease import heartbeat, visible_gpus
from workers.process import JobPlan, PhaseTimes, TaskProcessor
from workers.teacher import TeacherClient
from workers.teachers import Teachers
from workers.wakeup import Wakeup

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.1  # an idle worker claims this often: a new job waits at most this long
# A worker still running tasks that found the queue empty asks again this often: its own tasks are
# ending (a job's tail), and idle workers pick up a new job within IDLE_POLL_S. An empty claim costs
# the worker 0.2 ms and PostgreSQL 0.1; four busy workers polling ten times a second through a job's
# last seconds made about a hundred of them.
BUSY_POLL_S = 1.0
PAUSED_PROBE_S = 10.0
SHUTDOWN_GRACE_S = 30.0
# Claims give expired leases back at most this often: under load a worker claims many times a second,
# and the sweep's two statements cost more than the claim itself. An expired lease waits this much more.
EXPIRED_SWEEP_S = 2.0


def new_owner() -> str:
    """A worker identity that is unique across hosts and restarts."""
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def raise_open_file_limit(wanted: int = 65536) -> None:
    """Raise the soft limit on open files toward the hard one (as vLLM's server does): streamed
    samples take a socket each, and 1,024 (a common default) is a few dozen tasks of n=16."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    retried: int = 0
    paused: int = 0
    released: int = 0  # given back on the way out, their teacher gone with this worker's host
    lost: int = 0


@dataclass
class Worker:
    """Claims tasks and runs them concurrently until ``stop()``; then finishes or releases them."""

    engine: Engine
    runner: VerifierRunner
    lease_seconds: float
    max_attempts: int
    max_in_flight: int
    prefetch: int | None = None  # tasks claimed beyond the requests out; default as many
    owner: str = field(default_factory=new_owner)
    exit_when_idle: bool = False
    teacher_policy: TeacherPolicy = field(default_factory=TeacherPolicy)  # which hosts and keys jobs may use
    paused_probe_s: float = PAUSED_PROBE_S
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
    stats: WorkerStats = field(default_factory=WorkerStats)
    _stopping: bool = False
    _tasks: dict[int, asyncio.Task[str]] = field(default_factory=dict)
    _plans: dict[str, JobPlan] = field(default_factory=dict)
    _times: PhaseTimes = field(default_factory=PhaseTimes)
    _wake: Wakeup = field(default_factory=Wakeup)  # a reply came, a task ended or stop() was called
    _swept: float = float("-inf")  # perf_counter of the last claim that swept expired leases
    _drained: float = float("-inf")  # perf_counter of the last claim that found fewer tasks than asked
    _news: Wakeup = field(default_factory=Wakeup)  # something the next heartbeat should say at once
    _identity: hosts.Identity = field(
        default_factory=lambda: hosts.Identity(socket.gethostname(), os.getpid(), visible_gpus())
    )

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _announce(self, in_flight: int) -> Callable[[], None]:
        """This worker's beat: where it runs, the teachers of the jobs it has served, what it holds
        (read here, in the event loop; written by the caller's thread)."""
        teachers = sorted(
            {url for plan in self._plans.values() for url in _teacher_names(plan.spec["teacher"])}
        )
        return functools.partial(
            hosts.beat,
            self.engine,
            self.owner,
            self._identity,
            teachers=teachers,
            in_flight=in_flight,
            beat_s=self.lease_seconds / 3,
        )

    def _plan(self, job_id: str) -> JobPlan:
        if job_id not in self._plans:
            with reading(self.engine) as conn:
                spec = conn.execute(select(Job.spec).where(Job.id == job_id)).scalar_one()
            self._plans[job_id] = JobPlan.from_spec(spec, self.teacher_policy)
            self._news.set()  # the worker list shows the new job's teacher at once
        return self._plans[job_id]

    def _cancel(self, task_ids: set[int]) -> None:
        for task_id in task_ids:
            if task_id in self._tasks:
                self._tasks[task_id].cancel()

    def _settle(self, task_id: int, task: asyncio.Task[str]) -> None:
        self._tasks.pop(task_id, None)
        self._wake.set()  # a task fewer: there may be room to claim
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, LeaseLost):
            self.stats.lost += 1
            log.warning("%s", exc.message)
        elif exc is not None:
            log.error("task %s crashed", task_id, exc_info=exc)
        else:
            outcome = task.result()
            if outcome == "done":
                self.stats.done += 1
            elif outcome == "failed":
                self.stats.failed += 1
            elif outcome == "paused":
                self.stats.paused += 1
            elif outcome == "released":
                self.stats.released += 1
            else:
                self.stats.retried += 1

    def _room(self, processor: TaskProcessor) -> int:
        """How many tasks to claim now: up to the requests plus the prefetch, with a cap on the tasks
        held in all (replies still being verified or committed count), so a slow verifier or database
        pushes back. The cap leaves room for a full commit batch beyond the requests: the committer
        holds a second or two of replies on purpose (``workers/commit.py``), and when the cap counted
        them against the requests' allowance, claims stopped and request slots went idle.

        Claims wait until three quarters of the prefetch is gone, so that replies coming one by one do
        not each cost a claim transaction (offline on PostgreSQL, a claim cost the worker 0.23 to 0.31
        ms of CPU and the server about 0.25, whether it took 4 tasks or 48, before the sweep of expired
        leases that some claims add); a quarter of the prefetch still covers a claim's latency.
        """
        prefetch = self.max_in_flight if self.prefetch is None else self.prefetch
        ahead = self.max_in_flight + prefetch - len(processor.awaiting_reply)
        room = min(ahead, 2 * self.max_in_flight + prefetch + MAX_BATCH - len(self._tasks))
        return room if room >= max(1, prefetch * 3 // 4) or not processor.awaiting_reply else 0

    def _may_claim(self) -> bool:
        """A queue found empty is asked again after ``IDLE_POLL_S`` (``BUSY_POLL_S`` while tasks of
        this worker still run), not at every reply that follows."""
        interval = BUSY_POLL_S if self._tasks else IDLE_POLL_S
        return time.perf_counter() - self._drained >= interval

    async def _claim(self, count: int) -> list[ClaimedTask]:
        started = time.perf_counter()
        sweep = started - self._swept >= EXPIRED_SWEEP_S
        try:
            claimed = await asyncio.to_thread(
                functools.partial(
                    queue.claim,
                    self.engine,
                    self.owner,
                    count,
                    self.lease_seconds,
                    self.max_attempts,
                    sweep_expired=sweep,
                )
            )
            if sweep:
                self._swept = started
            if len(claimed) < count:
                self._drained = started
            return claimed
        except OperationalError as exc:
            log.warning("claim failed, retrying: %s", exc)
            return []
        finally:
            self._times.claim_s += time.perf_counter() - started
            self._times.claims += 1

    async def run(self) -> WorkerStats:
        """Work until stopped (or, with ``exit_when_idle``, until no task is left to run anywhere)."""
        log.info("worker %s started (max_in_flight=%d)", self.owner, self.max_in_flight)
        # No cap on connections: the request and judge slots bound them, and a job with abort_early
        # streams each of a task's n samples on a connection of its own.
        raise_open_file_limit()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            teacher = Teachers(TeacherClient(session))
            processor = TaskProcessor(
                self.engine,
                self.owner,
                teacher,
                self.runner,
                self.max_attempts,
                max_in_flight=self.max_in_flight,
                times=self._times,
                replied=self._wake,
                stopping=lambda: self._stopping,
            )
            beat = asyncio.create_task(
                heartbeat(
                    self.engine,
                    self.owner,
                    self.lease_seconds,
                    lambda: set(self._tasks),
                    self._cancel,
                    announce=self._announce,
                    news=self._news,
                )
            )
            probe = asyncio.create_task(self._resume_when_teachers_return(processor.teacher))
            try:
                await self._serve(processor)
            finally:
                beat.cancel()
                probe.cancel()
                await self._shut_down()
                await processor.committer.close()
                teacher.close()
                with contextlib.suppress(OperationalError):
                    await asyncio.to_thread(hosts.stopped, self.engine, self.owner)
        log.info("worker %s stopped: %s", self.owner, self.stats)
        log.info("worker profile %s", json.dumps(dataclasses.asdict(self._times)))
        return self.stats

    async def _serve(self, processor: TaskProcessor) -> None:
        while not self._stopping:
            self._wake.clear()  # before counting, so a reply from here on wakes the wait below
            room = self._room(processor)
            asked = room > 0 and self._may_claim()
            claimed = await self._claim(room) if asked else []
            if claimed and not self._tasks:
                log.info("picked up %d tasks (job %s)", len(claimed), claimed[0].job_id)
            for task in claimed:
                running = processor.start(task, self._plan(task.job_id))
                running.add_done_callback(functools.partial(self._settle, task.id))
                self._tasks[task.id] = running
            idle = asked and not claimed and not self._tasks and self.exit_when_idle
            if idle and not await asyncio.to_thread(queue.outstanding, self.engine):
                return
            # Woken by a reply or a finished task (both set ``_wake``), a stop, or the poll interval:
            # never by waiting on every task, which costs a callback per task per wake-up.
            await self._wake.wait(IDLE_POLL_S)

    async def _resume_when_teachers_return(self, teacher: Teachers) -> None:
        """Resume jobs paused for an unreachable teacher or judge once every model the job calls
        answers again (one of each one's servers)."""
        while True:
            await asyncio.sleep(self.paused_probe_s)
            try:
                paused = await asyncio.to_thread(jobs.paused_for_teacher, self.engine)
            except OperationalError as exc:
                log.warning("could not list paused jobs: %s", exc)
                continue
            for job_id, spec in paused:
                plan = JobPlan.from_spec(spec, self.teacher_policy)
                if plan.refused is None and await _all_reachable(teacher, plan):
                    with contextlib.suppress(JobStateConflict):
                        await asyncio.to_thread(jobs.resume_job, self.engine, job_id)
                        log.info("job %s resumed: its teacher (and any judge) answers again", job_id)

    async def _shut_down(self) -> None:
        """Give running tasks a grace period to finish, then hand the rest back to the queue."""
        if self._tasks:
            await asyncio.wait(set(self._tasks.values()), timeout=self.shutdown_grace_s)
        left = list(self._tasks)
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if left:
            released = await asyncio.to_thread(queue.release, self.engine, self.owner, left)
            log.info("released %d unfinished tasks", released)


def _teacher_names(teacher: dict[str, Any]) -> list[str]:
    """A job's teacher as the worker list names it: its servers' URLs, or the engine's model."""
    if teacher.get("kind") == "vllm-engine":
        return [f"vllm-engine:{teacher['model']}"]
    return list(teacher.get("base_url") or [])


async def _all_reachable(teacher: Teachers, plan: JobPlan) -> bool:
    for target in plan.models():
        if not await teacher.reachable(target):
            return False
    return True


def install_signal_handlers(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)

"""Workers' heartbeats: who is live, on which host, holding which job's tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from service.database import hosts, jobs, queue
from service.database.db import utcnow, writing
from service.database.models import WorkerHost
from service.schemas import JobIn
from workers.lease import visible_gpus

HERE = hosts.Identity("gpu-node-1", 4242, 8)


def test_a_beat_registers_a_worker_and_the_next_one_updates_it(engine: Engine) -> None:
    hosts.beat(engine, "w1", HERE, teachers=[], in_flight=0, beat_s=10)
    hosts.beat(engine, "w1", HERE, teachers=["http://127.0.0.1:8000/v1"], in_flight=3, beat_s=10)
    (worker,) = hosts.list_workers(engine)
    assert (worker.host, worker.pid, worker.gpus, worker.in_flight) == ("gpu-node-1", 4242, 8, 3)
    assert worker.teachers == ["http://127.0.0.1:8000/v1"] and worker.live


def test_a_worker_is_gone_once_it_stops_or_misses_its_beats(engine: Engine) -> None:
    for owner in ("quiet", "stopped", "beating"):
        hosts.beat(engine, owner, HERE, teachers=[], in_flight=1, beat_s=10)
    with writing(engine) as conn:
        late = utcnow() - timedelta(seconds=10 * hosts.LIVE_BEATS + 1)
        conn.execute(update(WorkerHost).where(WorkerHost.owner == "quiet").values(last_seen=late))
    hosts.stopped(engine, "stopped")
    live = {w.owner: w.live for w in hosts.list_workers(engine)}
    assert live == {"beating": True, "quiet": False, "stopped": False}


def test_a_jobs_workers_are_those_holding_its_tasks(engine: Engine) -> None:
    body = {
        "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        "prompts": [{"id": "a", "prompt": "1"}],
    }
    job_id = jobs.create_job(engine, JobIn.model_validate(body)).id
    for owner in ("holder", "idle"):
        hosts.beat(engine, owner, HERE, teachers=[], in_flight=0, beat_s=10)
    assert hosts.list_workers(engine, job_id) == []
    queue.claim(engine, "holder", 1, 30, max_attempts=3)
    assert [w.owner for w in hosts.list_workers(engine, job_id)] == ["holder"]


@pytest.mark.parametrize(("devices", "count"), [("0,1,3", 3), ("", 0), ("-1", 0), ("GPU-5f1c", 1)])
def test_visible_gpus_are_those_cuda_visible_devices_names(
    devices: str, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", devices)
    assert visible_gpus() == count

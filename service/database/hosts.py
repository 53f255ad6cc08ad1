"""Which workers are live, and on which hosts: each worker's heartbeat, written as it renews its leases.

A worker says where it runs (host, process, visible GPUs), which teacher servers it talks to and how
many tasks it holds, every ``beat_s`` seconds, idle or not. It is live while its beats keep coming: a
worker whose host was cut off or killed simply stops beating, and after ``LIVE_BEATS`` missed beats it
is shown as gone (its tasks come back through their leases, not through this table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, insert, select, update

from service.database.db import reading, utcnow, writing
from service.database.models import Task, WorkerHost
from service.responses import WorkerOut

LIVE_BEATS = 3
SHOWN_FOR = timedelta(days=1)  # workers gone for longer are left out of the list


@dataclass(frozen=True)
class Identity:
    host: str
    pid: int
    gpus: int


def beat(
    engine: Engine, owner: str, identity: Identity, *, teachers: list[str], in_flight: int, beat_s: float
) -> None:
    """Record that the worker is alive now, with what it holds."""
    now = utcnow()
    values = {"teachers": teachers, "in_flight": in_flight, "beat_s": beat_s, "last_seen": now}
    with writing(engine) as conn:
        updated = conn.execute(update(WorkerHost).where(WorkerHost.owner == owner).values(**values))
        if updated.rowcount == 0:
            conn.execute(
                insert(WorkerHost).values(
                    owner=owner,
                    host=identity.host,
                    pid=identity.pid,
                    gpus=identity.gpus,
                    started_at=now,
                    **values,
                )
            )


def stopped(engine: Engine, owner: str) -> None:
    """A clean stop: the worker is gone at once rather than after its missed beats."""
    with writing(engine) as conn:
        conn.execute(
            update(WorkerHost).where(WorkerHost.owner == owner).values(stopped_at=utcnow(), in_flight=0)
        )


def list_workers(engine: Engine, job_id: str | None = None) -> list[WorkerOut]:
    """Workers seen in the last day, by host; with ``job_id``, only those holding its tasks now."""
    now = utcnow()
    query = select(WorkerHost).where(WorkerHost.last_seen >= now - SHOWN_FOR)
    if job_id is not None:
        holding = select(Task.owner).where(Task.job_id == job_id, Task.status == "running")
        query = query.where(WorkerHost.owner.in_(holding))
    with reading(engine) as conn:
        rows = conn.execute(query.order_by(WorkerHost.host, WorkerHost.owner)).all()
    return [
        WorkerOut(
            owner=row.owner,
            host=row.host,
            pid=row.pid,
            gpus=row.gpus,
            teachers=row.teachers,
            in_flight=row.in_flight,
            started_at=row.started_at,
            last_seen=row.last_seen,
            stopped_at=row.stopped_at,
            live=row.stopped_at is None and (now - row.last_seen).total_seconds() <= LIVE_BEATS * row.beat_s,
        )
        for row in rows
    ]

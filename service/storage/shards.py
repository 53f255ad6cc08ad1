"""Parquet shards: committed samples, written atomically and recorded in the database.

A shard is all or nothing: its file is written whole (``service/storage/stores.py``: locally under a temporary
name, fsynced and renamed; on an fsspec URL in one upload), and it counts only once the database
records it and takes its samples off the backlog (``shard_backlog``) in one transaction, which also
checks that no other flusher took any of them. A crash leaves at most an unrecorded file, which
``remove_orphans`` deletes; readers list shards from the database, never by listing the store.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from pathlib import PurePosixPath
from typing import NamedTuple

import pyarrow as pa
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from service.database.db import among, reading, utcnow, writing
from service.database.jobs import task_progress
from service.database.models import Job, Sample, Shard, ShardBacklog
from service.errors import ShardWriteError
from service.storage import soft_labels
from service.storage.shard_rows import SCHEMA, backlog_pages, soft_labels_of
from service.storage.stores import ShardStore

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 300.0
SOFT_LABELS = "softlabels"
FREE_TEXT = ("completion", "think")  # written without dictionary or statistics (service/storage/stores.py)


@dataclass(frozen=True)
class FlushResult:
    shards: int
    rows: int
    finishing: bool = False  # a job has no more tasks waiting than running: it ends soon


class Backlog(NamedTuple):
    """Samples of one kind awaiting a shard: how many, and when the oldest was committed."""

    samples: int
    oldest: datetime | None


def _write_shard(
    engine: Engine, store: ShardStore, job_id: str, kind: str, *, shard_rows: int, least: int
) -> int:
    """Up to ``shard_rows`` of the job's samples of a kind in a shard and, for accepted samples with
    soft labels, the soft-label shard beside it (same name, folder ``softlabels``): both files first,
    then both rows, with the samples taken off the backlog, in one transaction. Returns how many
    samples it holds; none are written when fewer than ``least`` await (another flusher took them).
    """
    ids: list[int] = []

    def noting_ids(pages: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for page in pages:
            ids.extend(page.column("sample_id").to_pylist())
            yield page

    with reading(engine) as conn:
        spec = conn.execute(select(Job.spec).where(Job.id == job_id)).scalar_one()
        pages = backlog_pages(conn, spec, job_id, kind == "accepted", shard_rows)
        first = next(pages, None)
        if first is None:
            return 0
        name = f"part-{first.column('sample_id')[0].as_py():012d}-{secrets.token_hex(3)}.parquet"
        path = f"{job_id}/{kind}/{name}"
        size = store.write_parts(path, SCHEMA, noting_ids(chain([first], pages)), FREE_TEXT)
    written = {kind: (path, len(ids), size)}  # kind: path, rows, bytes
    if len(ids) < least:  # another flusher took the rest
        store.delete(path)
        return 0
    try:
        if kind == "accepted" and (labels := soft_labels_of(engine, ids)):
            table = soft_labels.to_arrow(labels)
            labels_path = f"{job_id}/{SOFT_LABELS}/{name}"
            written[SOFT_LABELS] = labels_path, table.num_rows, store.write(labels_path, table)
        with writing(engine) as conn:
            conn.execute(
                insert(Shard),
                [
                    {
                        "job_id": job_id,
                        "kind": shard_kind,
                        "path": shard_path,
                        "num_rows": rows,
                        "num_bytes": num_bytes,
                        "created_at": utcnow(),
                    }
                    for shard_kind, (shard_path, rows, num_bytes) in written.items()
                ],
            )
            taken = conn.execute(
                delete(ShardBacklog).where(
                    ShardBacklog.job_id == job_id,
                    ShardBacklog.accepted.is_(kind == "accepted"),
                    among(conn, ShardBacklog.sample_id, ids),
                )
            ).rowcount
            if SOFT_LABELS in written:  # the soft-label shard holds them now
                conn.execute(update(Sample).where(among(conn, Sample.id, ids)).values(soft_labels=None))
            if taken != len(ids):  # another flusher took some: roll back, ours never counted
                raise ShardWriteError(f"{len(ids) - taken} samples were already in another shard")
    except BaseException:
        for shard_path, _, _ in written.values():
            store.delete(shard_path)
        raise
    return len(ids)


def flush_job(
    engine: Engine,
    store: ShardStore,
    job_id: str,
    *,
    shard_rows: int,
    final: bool,
    draining: bool = False,
    max_age_s: float | None = None,
    backlog: dict[bool, Backlog] | None = None,
) -> FlushResult:
    """Write full shards of the job's unflushed samples; with ``final``, the remainder too.

    Shards are written as the job runs, not all at its end: a tenth of a shard is enough once its
    oldest sample has waited ``max_age_s``, or once the job is ``draining`` (nothing left to claim,
    its last tasks running). So when the last sample lands only a few are left to write, and the job
    is done a moment after its last reply; shards still hold at least a tenth of ``shard_rows``.

    Samples are counted before any is read (``backlog``, by kind, if the caller has counted them): a
    pass that has no shard to write (most passes of a running job) costs a count, not a read of every
    pending sample's text.
    """
    if backlog is None:
        with reading(engine) as conn:
            backlog = _backlogs(conn, job_id).get(job_id, {})
    shards = rows_written = 0
    early = max(1, shard_rows // 10)
    for kind, accepted in (("accepted", True), ("rejected", False)):
        pending, oldest = backlog.get(accepted, Backlog(0, None))
        waited = utcnow() - oldest if oldest is not None else timedelta(0)
        aged = max_age_s is not None and waited > timedelta(seconds=max_age_s)
        least = 1 if final else early if draining or aged else shard_rows
        while pending >= least:
            rows = _write_shard(engine, store, job_id, kind, shard_rows=shard_rows, least=least)
            if not rows:  # another flusher took some
                break
            shards += 1
            rows_written += rows
            pending -= rows
    return FlushResult(shards, rows_written)


def soft_label_shards(engine: Engine, job_id: str) -> list[tuple[str, str]]:
    """Each accepted shard of the job that has a soft-label shard, with it (they share a file name)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(Shard.kind, Shard.path)
            .where(Shard.job_id == job_id, Shard.kind.in_(("accepted", SOFT_LABELS)))
            .order_by(Shard.id)
        ).all()
    labels = {PurePosixPath(path).name: path for kind, path in rows if kind == SOFT_LABELS}
    return [
        (path, labels[PurePosixPath(path).name])
        for kind, path in rows
        if kind == "accepted" and PurePosixPath(path).name in labels
    ]


def warm_up() -> None:
    """Ready pyarrow for the flusher, once, when it starts: its allocator, and its one-time import of
    pandas (its first conversion from Python objects looks for pandas types; 0.2 s), which is then
    not paid in the middle of a job's first shard.

    Arrow's buffers come from jemalloc where pyarrow has it, unless ``ARROW_DEFAULT_MEMORY_POOL``
    says otherwise. Its default on Linux, mimalloc, asks for huge pages and hands memory back between
    flushes, so each shard's buffers were fresh 2 MB pages the kernel zeroed first: a third of the
    flusher's CPU (``perf``: ``clear_page_erms`` under ``do_huge_pmd_anonymous_page``). In the
    throughput bench the flusher's thread used 0.39 s with mimalloc, 0.30 with the system allocator
    and 0.26 with jemalloc.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and "jemalloc" in pa.supported_memory_backends():
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    pa.array([0])


def _backlogs(conn: Connection, job_id: str | None = None) -> dict[str, dict[bool, Backlog]]:
    """The backlog of every job that has one (or of one job), by job and then by kind (accepted or
    not), in one statement."""
    query = select(
        ShardBacklog.job_id, ShardBacklog.accepted, func.count(), func.min(ShardBacklog.created_at)
    ).group_by(ShardBacklog.job_id, ShardBacklog.accepted)
    if job_id is not None:
        query = query.where(ShardBacklog.job_id == job_id)
    backlogs: dict[str, dict[bool, Backlog]] = {}
    for job, accepted, n, oldest in conn.execute(query):
        backlogs.setdefault(job, {})[accepted] = Backlog(int(n), oldest)
    return backlogs


def flush_all(
    engine: Engine, store: ShardStore, *, shard_rows: int, max_age_s: float | None = None
) -> FlushResult:
    """One flusher pass: write shards for every active job; mark finished jobs done once flushed.

    What a pass decides on (the active jobs, their unfinished tasks by status, their backlogs) is read
    in one transaction, three statements, whatever the number of jobs; most passes write nothing.
    """
    with reading(engine) as conn:
        jobs = conn.execute(
            select(Job.id, Job.status).where(Job.status.in_(("running", "paused", "cancelled")))
        ).all()
        progress = task_progress(conn, [job_id for job_id, _ in jobs])
        # After the tasks: a job seen with no task left has all its samples in these counts.
        backlogs = _backlogs(conn)
    shards = rows = 0
    finishing = False
    for job_id, status in jobs:
        tasks = progress[job_id].tasks
        active = tasks.draft + tasks.queued + tasks.running + tasks.paused
        finishing = finishing or 0 < active <= 2 * tasks.running
        if backlog := backlogs.get(job_id):
            result = flush_job(
                engine,
                store,
                job_id,
                shard_rows=shard_rows,
                final=active == 0,
                draining=active == tasks.running,
                max_age_s=max_age_s,
                backlog=backlog,
            )
            shards, rows = shards + result.shards, rows + result.rows
        if active == 0 and status == "running":
            _mark_done(engine, job_id)
    return FlushResult(shards, rows, finishing)


def _mark_done(engine: Engine, job_id: str) -> None:
    with writing(engine) as conn:
        unflushed = conn.execute(
            select(func.count()).select_from(ShardBacklog).where(ShardBacklog.job_id == job_id)
        ).scalar_one()
        if unflushed == 0:
            conn.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running")
                .values(status="done", finished_at=utcnow())
            )


def remove_orphans(engine: Engine, store: ShardStore, grace_s: float = ORPHAN_GRACE_S) -> list[str]:
    """Delete files in the store that no shard row records (a crash's leftovers); returns them.

    Only files older than ``grace_s`` go, so a flusher elsewhere that has written its file but not
    yet committed it keeps it; a file whose store keeps no modification time is left alone.
    """
    with reading(engine) as conn:
        recorded = set(conn.execute(select(Shard.path)).scalars())
    cutoff = time.time() - grace_s
    removed = []
    for relative, mtime in list(store.files()):
        if relative not in recorded and mtime is not None and mtime <= cutoff:
            store.delete(relative)
            removed.append(relative)
    if removed:
        log.warning("removed %d shard files the database does not record", len(removed))
    return removed

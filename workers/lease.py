"""Keep leases alive: renew every lease a worker holds at a third of its life, and say with each beat
that the worker is alive (``service/database/hosts.py``), where and with what."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service.database import queue
from workers.wakeup import Wakeup

log = logging.getLogger(__name__)


def visible_gpus() -> int:
    """The GPUs this process may use: those CUDA_VISIBLE_DEVICES names (as Slurm sets it), else those
    ``nvidia-smi -L`` lists, else none."""
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return len([d for d in named.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


async def heartbeat(
    engine: Engine,
    owner: str,
    lease_seconds: float,
    in_flight: Callable[[], set[int]],
    on_lost: Callable[[set[int]], None],
    *,
    announce: Callable[[int], Callable[[], None]],
    news: Wakeup,
) -> None:
    """Renew until cancelled; tasks in flight whose lease is gone are handed to ``on_lost``.
    ``announce`` gives the write of the worker's beat (with the tasks it holds), idle or not, made
    in the event loop and run in a thread; ``news`` (a first
    job's teacher) makes the next beat come at once rather than at its time."""
    while True:
        running = in_flight()
        news.clear()
        try:
            await asyncio.to_thread(announce(len(running)))
        except OperationalError as exc:
            log.warning("heartbeat failed, retrying: %s", exc)
        await news.wait(lease_seconds / 3)
        running = in_flight()
        if not running:
            continue
        try:
            held = await asyncio.to_thread(queue.renew, engine, owner, lease_seconds)
        except OperationalError as exc:  # the database is briefly unreachable: try again next beat
            log.warning("lease renewal failed, retrying: %s", exc)
            continue
        lost = running - held
        if lost:
            log.warning("lost the lease on %d tasks; stopping them", len(lost))
            on_lost(lost)

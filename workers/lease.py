"""Keep leases alive: renew every lease a worker holds at a third of its life."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service.database import queue

log = logging.getLogger(__name__)


async def heartbeat(
    engine: Engine,
    owner: str,
    lease_seconds: float,
    in_flight: Callable[[], set[int]],
    on_lost: Callable[[set[int]], None],
) -> None:
    """Renew until cancelled; tasks in flight whose lease is gone are handed to ``on_lost``."""
    while True:
        await asyncio.sleep(lease_seconds / 3)
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

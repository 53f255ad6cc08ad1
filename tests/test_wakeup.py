"""The worker's wake-up flag: set before or during a wait ends it; otherwise the timeout does."""

from __future__ import annotations

import asyncio
import time

from workers.wakeup import Wakeup


def test_a_flag_set_before_the_wait_ends_it_at_once_until_cleared() -> None:
    async def scenario() -> tuple[float, float]:
        wakeup = Wakeup()
        wakeup.set()
        started = time.monotonic()
        await wakeup.wait(5)
        at_once = time.monotonic() - started
        wakeup.clear()
        started = time.monotonic()
        await wakeup.wait(0.2)
        return at_once, time.monotonic() - started

    at_once, timed_out = asyncio.run(scenario())
    assert at_once < 0.1
    assert 0.15 < timed_out < 2


def test_a_flag_set_during_the_wait_ends_it() -> None:
    async def scenario() -> float:
        wakeup = Wakeup()
        asyncio.get_running_loop().call_later(0.1, wakeup.set)
        started = time.monotonic()
        await wakeup.wait(10)
        assert wakeup.is_set()
        return time.monotonic() - started

    assert 0.05 < asyncio.run(scenario()) < 2


def test_a_wait_without_timeout_lasts_until_set() -> None:
    async def scenario() -> bool:
        wakeup = Wakeup()
        waiting = asyncio.create_task(wakeup.wait())
        await asyncio.sleep(0.3)
        still_waiting = not waiting.done()
        wakeup.set()
        await asyncio.wait_for(waiting, 2)
        return still_waiting

    assert asyncio.run(scenario())

"""A flag that one coroutine waits on, with a timeout, for the price of a future and a timer.

The worker's claim loop and its committer wait for "something changed, or a time passed" once per
reply. ``asyncio.wait_for(event.wait(), t)`` and ``asyncio.wait({...}, timeout=t)`` each wrap the
wait in a new task, and cancelling it costs the loop another step; in the throughput bench that was
a few thousand tasks a run, for nothing but waiting.
"""

from __future__ import annotations

import asyncio


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Wakeup:
    """``set`` wakes the one ``wait`` in progress, or the next one (it returns at once) until
    ``clear``. Meant for a single waiter at a time."""

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._waiter is not None:
            _resolve(self._waiter)

    def clear(self) -> None:
        self._set = False

    async def wait(self, timeout: float | None = None) -> None:
        """Return once set, or after ``timeout`` seconds (None: no limit), whichever comes first."""
        if self._set:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _resolve, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

"""Per-token limits on job creation: a rate (token bucket, per API process) and caps on what one token
may have queued. Each refusal says which setting and, for the rate, when to come back."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from service.errors import TracemillError


class TooManyRequests(TracemillError):
    """Slow down: this token created jobs faster than the operator allows."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class JobRate:
    """At most ``per_minute`` jobs a minute per token, in bursts of up to as many; 0 means no limit."""

    per_minute: int
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (tokens, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, name: str, now: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(name, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * rate)
            if tokens < 1.0:
                wait = math.ceil((1.0 - tokens) / rate)
                self._buckets[name] = (tokens, now)
                raise TooManyRequests(
                    f"more than {self.per_minute} jobs a minute from token {name!r} "
                    f"(TRACEMILL_JOBS_PER_MINUTE); retry in {wait} s",
                    wait,
                )
            self._buckets[name] = (tokens - 1.0, now)

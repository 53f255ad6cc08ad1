"""What the throughput bench reads off the machine and the teacher: processes' CPU seconds from ``/proc``,
the teacher's requests in flight from its stats, and one timed run's figures.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    samples: int
    tokens: int
    seconds: float
    in_flight_share: float = 0.0
    teacher_span_s: float = 0.0
    lead_s: float = 0.0  # from the job's submission to its first request at the teacher
    tail_s: float = 0.0  # from the last reply to the job done, its last shard written
    accepted: int = 0
    client_cpu_s: float = 0.0  # the bare client's own CPU: the floor of receiving these replies

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def _stat(pid: int | str) -> tuple[str, int, float]:
    """A process's command name, session id and CPU seconds so far, from ``/proc/PID/stat``."""
    head, _, tail = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
    fields = tail.split()
    return head.partition("(")[2], int(fields[3]), (int(fields[11]) + int(fields[12])) / TICKS


def _all_processes() -> Iterator[tuple[str, int, float]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):  # gone while being read
                yield _stat(entry.name)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (0 once it is gone)."""
    try:
        return _stat(pid)[2]
    except OSError:
        return 0.0


def session_cpu(session_ids: set[int]) -> float:
    """CPU of every live process in these sessions (a spawned command and everything it started)."""
    return sum(cpu for _, session, cpu in _all_processes() if session in session_ids)


def database_cpu() -> float:
    """CPU of the PostgreSQL server processes (this bench's throwaway server; 0 on SQLite)."""
    return sum(cpu for name, _, cpu in _all_processes() if name == "postgres")


def in_flight_share(teacher_url: str, level: int) -> tuple[float, float, float]:
    """Time-averaged requests at the teacher from the first arrival to the last, over ``level``; and
    the first arrival and last reply (monotonic clock, which all processes here share)."""
    intervals = httpx.get(f"{teacher_url}/tracemill/stats", params={"reset": 1}).json()["intervals"]
    start, end = min(a for a, _ in intervals), max(a for a, _ in intervals)
    busy = sum(max(0.0, min(b, end) - a) for a, b in intervals)
    return (busy / (end - start) / level if end > start else 1.0), start, max(b for _, b in intervals)

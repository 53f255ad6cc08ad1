"""What a job page charts: samples finished over time, and how hard its prompts were (pass rates).

Both read the tasks table (one row per prompt, with its counts and finish time), never the samples,
so a job of a million samples charts from a quarter of a million small rows at most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from service.database.db import reading, utcnow
from service.database.models import Job, Task

THROUGHPUT_BUCKETS = 40  # at most: a short job has fewer, a bar's width never under a second
# Bar widths a reader takes in at a glance, from one second to a day: the narrowest that fits the job's
# run in THROUGHPUT_BUCKETS bars.
NICE_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# Pass-rate bins: exactly 0, then quarters, then exactly 1 (all samples of the prompt accepted).
PASS_RATE_BINS = ("0%", "1-25%", "26-50%", "51-75%", "76-99%", "100%")


@dataclass(frozen=True)
class Bucket:
    offset_s: float  # from the job's start
    samples: int
    tokens: int


@dataclass(frozen=True)
class Throughput:
    width_s: float
    buckets: list[Bucket]

    @property
    def peak(self) -> int:
        return max((b.samples for b in self.buckets), default=0)

    @property
    def width(self) -> str:
        """The bar width in words: "1 s", "5 min", "2 h", "3 d"."""
        for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
            if self.width_s >= seconds and self.width_s % seconds == 0:
                return f"{self.width_s // seconds:.0f} {unit}"
        return f"{self.width_s:.0f} s"


def bar_width_s(span_s: float, buckets: int = THROUGHPUT_BUCKETS) -> float:
    """The narrowest nice bar width that shows ``span_s`` in at most ``buckets`` bars (whole days past
    the ladder's top)."""
    for width in NICE_WIDTHS_S:
        if span_s <= width * buckets:
            return float(width)
    return 86400.0 * -(-span_s // (86400 * buckets))


def throughput(engine: Engine, job_id: str, buckets: int = THROUGHPUT_BUCKETS) -> Throughput:
    """Samples and completion tokens of the tasks finished in each of ``buckets`` equal time slices."""
    with reading(engine) as conn:
        job = select(Job.started_at, Job.finished_at).where(Job.id == job_id)
        started, finished = conn.execute(job).one()
        rows = conn.execute(
            select(Task.finished_at, Task.n_samples, Task.completion_tokens).where(
                Task.job_id == job_id, Task.finished_at.is_not(None), Task.n_samples > 0
            )
        ).all()
    if started is None or not rows:
        return Throughput(width_s=0.0, buckets=[])
    end: datetime = finished or utcnow()
    span = max((end - started).total_seconds(), 0.0)
    width = bar_width_s(span, buckets)
    buckets = max(1, min(buckets, math.ceil(span / width)))
    samples, tokens = [0] * buckets, [0] * buckets
    for finished_at, n, completion_tokens in rows:
        offset = (finished_at - started).total_seconds() if finished_at else 0.0
        index = min(buckets - 1, max(0, int(offset / width)))
        samples[index] += n
        tokens[index] += completion_tokens
    return Throughput(
        width_s=width,
        buckets=[Bucket(i * width, samples[i], tokens[i]) for i in range(buckets)],
    )


def pass_rates(engine: Engine, job_id: str) -> dict[str, int]:
    """How many sampled prompts fall in each pass-rate bin (accepted / sampled)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(Task.n_accepted, Task.n_samples, func.count())
            .where(Task.job_id == job_id, Task.n_samples > 0)
            .group_by(Task.n_accepted, Task.n_samples)
        ).all()
    counts = dict.fromkeys(PASS_RATE_BINS, 0)
    for accepted, sampled, prompts in rows:
        counts[_bin(accepted / sampled)] += prompts
    return counts


def _bin(rate: float) -> str:
    if rate <= 0:
        return PASS_RATE_BINS[0]
    if rate >= 1:
        return PASS_RATE_BINS[-1]
    return PASS_RATE_BINS[min(4, 1 + int((rate - 1e-9) * 4))]

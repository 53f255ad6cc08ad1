"""Reading samples back: filtered, keyset-paginated pages and single samples, for the API and the pages.

Filters combine: status, rejected by a verifier, a rejection reason, a prompt id, and a case-insensitive
substring of the prompt or the completion. Pages are keyset-paginated on the sample id (``after`` the
last id seen, or ``before`` the first), so a page deep into a 200,000-sample job costs what the first does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Engine, Exists, Text, cast, exists, func, or_, select

from service.database.db import reading
from service.database.jobs import job_row, sample_counts, task_progress
from service.database.models import Sample, Task, Verdict, VerdictCount
from service.database.prompts import conversation
from service.database.samples import SampleQuery, verdicts_by_sample, with_prompt
from service.errors import SampleNotFound
from service.reasoning import split_text
from service.responses import SampleCounts, SampleOut, SamplePage, VerdictOut


@dataclass(frozen=True)
class JobHeader:
    """What a samples page shows of its job: far cheaper than the job's full statistics."""

    id: str
    name: str | None
    status: str
    spec: dict[str, Any]
    samples: SampleCounts
    reasons: list[str]


def job_header(engine: Engine, job_id: str) -> JobHeader:
    with reading(engine) as conn:
        job = job_row(conn, job_id)
        progress = task_progress(conn, [job_id])[job_id]
        reasons = distinct_reasons(conn, job_id)
    samples = sample_counts(progress.samples, progress.accepted)
    return JobHeader(job.id, job.name, job.status, job.spec, samples, reasons)


def distinct_reasons(conn: Connection, job_id: str) -> list[str]:
    """The job's rejection reasons, in order (from its verdict counts: a few rows at any size)."""
    return list(
        conn.execute(
            select(VerdictCount.reason)
            .where(VerdictCount.job_id == job_id, VerdictCount.reason != "")
            .distinct()
            .order_by(VerdictCount.reason)
        ).scalars()
    )


@dataclass(frozen=True)
class SampleFilter:
    status: Literal["accepted", "rejected"] | None = None
    verifier: str | None = None  # samples this verifier rejected
    reason: str | None = None
    prompt_id: str | None = None
    q: str | None = None
    min_entropy: float | None = None  # the teacher's mean token entropy, where soft labels were kept
    max_entropy: float | None = None

    def apply(self, query: SampleQuery, job_id: str) -> SampleQuery:
        """The query narrowed to this filter's samples of the job.

        Shaped for keyset pages on a job of any size (samples walked in id order until the page is
        full): a prompt id goes through the task's unique key to its few samples; a verdict condition
        is a probe of the verdict's primary key (sample, verifier) for each sample walked, which
        needs no statistics to plan well, so SQLite and a freshly filled PostgreSQL agree.
        """
        if self.prompt_id:
            task = select(Task.id).where(Task.job_id == job_id, Task.prompt_id == self.prompt_id)
            query = query.where(Sample.task_id == task.scalar_subquery())
        else:
            query = query.where(Sample.job_id == job_id)
        if self.status is not None:
            query = query.where(Sample.accepted.is_(self.status == "accepted"))
        if self.verifier:
            rejected = _verdict_exists(Verdict.verifier == self.verifier, Verdict.accepted.is_(False))
            query = query.where(rejected)
        if self.reason:
            # Reasons read "<verifier>:<code>"; naming the verifier makes the probe a key lookup.
            verifier = self.reason.partition(":")[0]
            query = query.where(_verdict_exists(Verdict.verifier == verifier, Verdict.reason == self.reason))
        if self.q:
            query = query.where(
                or_(
                    Sample.completion.icontains(self.q, autoescape=True),
                    Task.prompt.icontains(self.q, autoescape=True),
                    cast(Task.messages, Text).icontains(self.q, autoescape=True),
                )
            )
        if self.min_entropy is not None:
            query = query.where(Sample.entropy >= self.min_entropy)
        if self.max_entropy is not None:
            query = query.where(Sample.entropy <= self.max_entropy)
        return query


# A filtered count stops here ("1,000+"): counting a search's matches then costs at most what finding
# a page of them does, one walk of the job's samples.
COUNT_CAP = 1_000


@dataclass(frozen=True)
class MatchCount:
    """How many samples a filter matches: exactly, or at least ``samples`` where ``more``."""

    samples: int
    more: bool = False


def count_matching(engine: Engine, job: JobHeader, filters: SampleFilter) -> MatchCount | None:
    """The samples the filters match (None without filters: the job's own counts say it). A status, or
    one rejection reason, is read from the job's counts; anything else is counted up to ``COUNT_CAP``."""
    if filters == SampleFilter():
        return None
    if filters == SampleFilter(status=filters.status):
        return MatchCount(job.samples.accepted if filters.status == "accepted" else job.samples.rejected)
    if filters.reason and filters in (
        SampleFilter(reason=filters.reason),
        SampleFilter("rejected", reason=filters.reason),
    ):
        verifier = filters.reason.partition(":")[0]
        counted = select(func.coalesce(func.sum(VerdictCount.samples), 0)).where(
            VerdictCount.job_id == job.id,
            VerdictCount.verifier == verifier,
            VerdictCount.accepted.is_(False),
            VerdictCount.reason == filters.reason,
        )
        with reading(engine) as conn:
            return MatchCount(int(conn.execute(counted).scalar_one()))
    matching = filters.apply(with_prompt(), job.id).with_only_columns(Sample.id).order_by(None)
    with reading(engine) as conn:
        found = conn.execute(select(func.count()).select_from(matching.limit(COUNT_CAP + 1).subquery()))
        samples = int(found.scalar_one())
    return MatchCount(min(samples, COUNT_CAP), more=samples > COUNT_CAP)


def _verdict_exists(*conditions: ColumnElement[bool]) -> Exists:
    return exists().where(Verdict.sample_id == Sample.id, *conditions)


def _sample_out(row: Any, verdicts: list[Any], spec: dict[str, Any]) -> SampleOut:
    return SampleOut(
        id=row.id,
        prompt_id=row.prompt_id,
        sample_index=row.sample_index,
        messages=conversation(row.prompt, row.messages, spec),
        reference=row.reference,
        completion=row.completion,
        think=split_text(row.completion).think,
        answer=row.answer,
        finish_reason=row.finish_reason,
        completion_tokens=row.completion_tokens,
        accepted=row.accepted,
        reason=row.reason,
        entropy=row.entropy,
        verdicts=[
            VerdictOut(verifier=v.verifier, accepted=v.accepted, reason=v.reason, details=v.details)
            for v in verdicts
        ],
    )


def _page(conn: Connection, query: SampleQuery, spec: dict[str, Any]) -> list[SampleOut]:
    rows = conn.execute(query).all()
    verdicts = verdicts_by_sample(conn, [row.id for row in rows])
    return [_sample_out(row, verdicts[row.id], spec) for row in rows]


def list_samples(
    engine: Engine,
    job_id: str,
    filters: SampleFilter = SampleFilter(),
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> SamplePage:
    """A page of samples in id order: the first ``limit`` after ``after``, or the last before ``before``."""
    query = filters.apply(with_prompt(), job_id)
    if before is not None:
        query = query.where(Sample.id < before).order_by(None).order_by(Sample.id.desc())
    elif after is not None:
        query = query.where(Sample.id > after)
    with reading(engine) as conn:
        spec = job_row(conn, job_id).spec
        items = _page(conn, query.limit(limit + 1), spec)
    more = len(items) > limit
    items = items[:limit]
    if before is not None:
        items.reverse()
        return SamplePage(
            items=items,
            next_cursor=items[-1].id if items else None,
            prev_cursor=items[0].id if items and more else None,
        )
    return SamplePage(
        items=items,
        next_cursor=items[-1].id if more else None,
        prev_cursor=items[0].id if items and after is not None else None,
    )


def get_sample(engine: Engine, job_id: str, sample_id: int) -> SampleOut:
    """One sample of a job with its prompt and every verdict."""
    with reading(engine) as conn:
        spec = job_row(conn, job_id).spec
        items = _page(conn, with_prompt().where(Sample.job_id == job_id, Sample.id == sample_id), spec)
    if not items:
        raise SampleNotFound(f"job {job_id} has no sample {sample_id}")
    return items[0]

"""Sample browsing (the API's and the pages' one query) and the job page's charts, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from service.api import browse, insights
from service.api.browse import SampleFilter
from service.database import finishing, jobs, queue
from service.database.finishing import NewSample
from service.errors import SampleNotFound
from service.schemas import JobIn
from verifiers.base import NamedVerdict

PROMPTS, N = 6, 4


def _verdicts(prompt: int, index: int) -> tuple[NamedVerdict, ...]:
    """Prompt p has p % 5 accepted samples of 4 (so pass rates 0, 1/4, 2/4, 3/4, 1, 0)."""
    accepted = index < prompt % 5
    math_ok = accepted or index % 2 == 0
    return (
        NamedVerdict("format", True, None, {"template": "plain"}),
        NamedVerdict(
            "math",
            math_ok,
            None if math_ok else "math:wrong_answer",
            {"extracted": str(index), "reference": str(prompt)},
        ),
        NamedVerdict(
            "length", accepted or not math_ok, None if accepted or not math_ok else "length:truncated", {}
        ),
    )


def _job(engine: Engine) -> str:
    job_id = jobs.create_job(
        engine,
        JobIn.model_validate(
            {
                "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "teacher"},
                "n": N,
                "verifiers": [{"name": "format"}, {"name": "math"}, {"name": "length"}],
                "prompts": [{"id": f"p{i}", "prompt": f"Compute {i} plus 100%_x."} for i in range(PROMPTS)],
            }
        ),
    ).id
    for task in queue.claim(engine, "w", PROMPTS, 30, max_attempts=3):
        prompt = int(task.prompt_id[1:])
        samples = [
            NewSample(
                i,
                f"<think>Zebra {prompt}</think> answer {i}",
                str(i),
                "stop",
                7,
                _verdicts(prompt, i),
            )
            for i in range(N)
        ]
        finishing.finish(engine, task, "w", samples, prompt_tokens=3)
    return job_id


def _ids(engine: Engine, job_id: str, filters: SampleFilter, limit: int = 1000) -> list[int]:
    return [s.id for s in browse.list_samples(engine, job_id, filters, limit=limit).items]


def test_each_filter_selects_exactly_its_samples(engine: Engine) -> None:
    job_id = _job(engine)
    every = browse.list_samples(engine, job_id, limit=1000).items
    assert len(every) == PROMPTS * N

    def expect(keep: object) -> list[int]:
        return [s.id for s in every if keep(s)]  # type: ignore[operator]

    def reasons(s: object) -> set[str | None]:
        return {v.reason for v in s.verdicts}  # type: ignore[attr-defined]

    assert _ids(engine, job_id, SampleFilter(status="accepted")) == expect(lambda s: s.accepted)
    assert _ids(engine, job_id, SampleFilter(status="rejected")) == expect(lambda s: not s.accepted)
    assert _ids(engine, job_id, SampleFilter(verifier="math")) == expect(
        lambda s: "math:wrong_answer" in reasons(s)
    )
    assert _ids(engine, job_id, SampleFilter(reason="length:truncated")) == expect(
        lambda s: "length:truncated" in reasons(s)
    )
    assert _ids(engine, job_id, SampleFilter(prompt_id="p3")) == expect(lambda s: s.prompt_id == "p3")
    assert _ids(engine, job_id, SampleFilter(q="zebra 4")) == expect(lambda s: s.prompt_id == "p4")
    assert _ids(engine, job_id, SampleFilter(q="100%_x")) == expect(lambda s: True)  # in the prompt, escaped
    assert _ids(engine, job_id, SampleFilter(q="1%0")) == []  # % is a character, not a wildcard
    assert _ids(engine, job_id, SampleFilter(status="rejected", prompt_id="p2", verifier="length")) == expect(
        lambda s: s.prompt_id == "p2" and "length:truncated" in reasons(s)
    )


def test_keyset_pages_cover_every_sample_once_both_ways(engine: Engine) -> None:
    job_id = _job(engine)
    forward, page = [], browse.list_samples(engine, job_id, limit=5)
    assert page.prev_cursor is None
    while True:
        forward += [s.id for s in page.items]
        if page.next_cursor is None:
            break
        page = browse.list_samples(engine, job_id, after=page.next_cursor, limit=5)
    assert forward == sorted(forward) and len(forward) == PROMPTS * N
    backward, last = [], [s.id for s in page.items]
    while page.prev_cursor is not None:
        page = browse.list_samples(engine, job_id, before=page.prev_cursor, limit=5)
        backward = [s.id for s in page.items] + backward
    assert backward + last == forward


def test_a_sample_of_another_job_is_not_found(engine: Engine) -> None:
    first, second = _job(engine), _job(engine)
    sample = browse.list_samples(engine, first, limit=1).items[0]
    assert browse.get_sample(engine, first, sample.id).verdicts == sample.verdicts
    with pytest.raises(SampleNotFound):
        browse.get_sample(engine, second, sample.id)


def test_pass_rates_and_throughput_add_up(engine: Engine) -> None:
    job_id = _job(engine)
    assert insights.pass_rates(engine, job_id) == {
        "0%": 2,
        "1-25%": 1,
        "26-50%": 1,
        "51-75%": 1,
        "76-99%": 0,
        "100%": 1,
    }
    chart = insights.throughput(engine, job_id)
    assert sum(b.samples for b in chart.buckets) == PROMPTS * N
    assert sum(b.tokens for b in chart.buckets) == PROMPTS * N * 7
    assert chart.width_s >= 1 and len(chart.buckets) <= insights.THROUGHPUT_BUCKETS


@pytest.mark.parametrize(
    ("span_s", "width", "bars"),
    [
        (0.2, "1 s", 1),  # a job of a moment: one bar of a second, not forty of five milliseconds
        (30, "1 s", 30),
        (100, "5 s", 20),
        (3600, "2 min", 30),
        (7 * 86400, "6 h", 28),
        (60 * 86400, "2 d", 30),
    ],
)
def test_throughput_bars_are_a_second_at_least_and_read_at_any_length(
    span_s: float, width: str, bars: int
) -> None:
    seconds = insights.bar_width_s(span_s)
    assert insights.Throughput(seconds, []).width == width
    assert max(1, -(-span_s // seconds)) == bars


def test_the_reason_menu_lists_every_reason_once(engine: Engine) -> None:
    job_id = _job(engine)
    assert browse.job_header(engine, job_id).reasons == ["length:truncated", "math:wrong_answer"]
    assert browse.job_header(engine, _job(engine)).samples.total == PROMPTS * N

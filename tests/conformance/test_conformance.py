"""The teacher conformance suite: every kind of teacher gives the worker the same things.

Same request, same fields; ``n`` honoured; a seed reproduces the samples; ``max_tokens`` truncation is
finish reason ``length``; usage counts; soft labels (top-k log-probabilities by token id) for every
generated token; overload (429, 503) retried; a dead engine noticed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import httpx
import numpy as np
import pytest

from service.errors import TeacherUnavailable
from service.reasoning import split_completion
from tests.conformance.conftest import TeacherUnderTest
from tests.fault_proxy import FaultProxy
from verifiers.base import Candidate, Verdict
from workers.early_abort import PartialChecks
from workers.teacher import ChatResult, TeacherEndpoint

QUESTION = [{"role": "user", "content": "Compute 6 * 7. Think first, then give the answer."}]
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "max_tokens": 48}
DEAD_NOTICED_WITHIN_S = 60.0


def test_n_choices_in_order_with_the_same_fields(teacher: TeacherUnderTest) -> None:
    result = teacher.chat(QUESTION, {**SAMPLING, "seed": 11}, n=3)
    assert [c.index for c in result.choices] == [0, 1, 2]
    for choice in result.choices:
        assert choice.finish_reason in ("stop", "length")
        assert (choice.content or choice.reasoning or "").strip()
        assert split_completion(choice.content, choice.reasoning).completion.strip()
    assert result.prompt_tokens > 0
    assert result.completion_tokens >= 3


def test_a_seed_reproduces_the_samples(teacher: TeacherUnderTest) -> None:
    """vLLM does not promise a seed's samples across batches (docs: usage/reproducibility; its batch
    invariance is GPU-only): on the CPU a matrix product's rounding depends on the batch's shape, and
    which sequences share a step depends on timing (n=4 siblings are scheduled as four requests). So
    each request here is one sample, sent alone on an idle engine, one after the other: its batch is
    itself at every step, whatever else the machine is doing. A first request puts the prompt in the
    prefix cache, so that every compared request computes the same part."""

    def alone(seed: int) -> tuple[str | None, int]:
        result = teacher.chat(QUESTION, {**SAMPLING, "seed": seed}, n=1)
        return result.choices[0].content, result.completion_tokens

    alone(4)
    first = [alone(seed) for seed in (5, 6, 7)]
    again = [alone(seed) for seed in (5, 6, 7)]
    assert again == first
    assert len({content for content, _ in first}) > 1  # the seed is not ignored


def test_max_tokens_cuts_with_finish_reason_length_and_counts_them(teacher: TeacherUnderTest) -> None:
    result = teacher.chat(QUESTION, {**SAMPLING, "seed": 3, "max_tokens": 4}, n=2)
    assert [c.finish_reason for c in result.choices] == ["length", "length"]
    assert result.completion_tokens == 2 * 4


def test_usage_counts_the_prompt(teacher: TeacherUnderTest) -> None:
    short = teacher.chat(QUESTION, {**SAMPLING, "seed": 1, "max_tokens": 4}, n=1)
    longer = [{"role": "user", "content": QUESTION[0]["content"] + " Explain every step in detail." * 8}]
    long = teacher.chat(longer, {**SAMPLING, "seed": 1, "max_tokens": 4}, n=1)
    assert long.prompt_tokens > short.prompt_tokens + 16


def test_overload_and_busy_answers_are_retried(teacher: TeacherUnderTest) -> None:
    if teacher.http_base is None:
        pytest.skip("the in-process engine has no HTTP between: it queues, it never answers 429 or 503")
    assert isinstance(teacher.target, TeacherEndpoint)
    proxy = FaultProxy(teacher.http_base, [429, 503, 429, 503])
    base = teacher.loop.run(proxy.start())
    try:
        result = teacher.chat_via(TeacherEndpoint((base,), teacher.target.model, max_retries=6), QUESTION, 2)
    finally:
        teacher.loop.run(proxy.close())
    assert len(result.choices) == 2
    assert (proxy.faulted, proxy.passed) == (4, 1)


def test_soft_labels_come_back_for_every_generated_token(teacher: TeacherUnderTest) -> None:
    result = teacher.chat(QUESTION, {**SAMPLING, "seed": 9}, n=2, top_logprobs=5)
    assert sum(len(c.soft_labels or ()) for c in result.choices) == result.completion_tokens
    for choice in result.choices:
        labels = choice.soft_labels
        assert labels is not None and len(labels) > 0
        assert (labels.token_ids >= 0).all()  # ids, not just strings
        assert labels.top_ids.shape == (len(labels), 5) and (labels.top_ids >= 0).all()
        assert (labels.top_logprobs <= 0).all() and (np.diff(labels.top_logprobs, axis=1) <= 1e-6).all()
        text, content = "".join(labels.tokens).strip(), (choice.content or "").strip()
        # vLLM labels the end-of-sequence token too (a student learns when to stop): its text comes last.
        assert text == content or (choice.finish_reason == "stop" and text.startswith(content)), text
    again = teacher.chat(QUESTION, {**SAMPLING, "seed": 9}, n=2, top_logprobs=5)
    assert [c.soft_labels.token_ids.tolist() for c in again.choices if c.soft_labels is not None] == [
        c.soft_labels.token_ids.tolist() for c in result.choices if c.soft_labels is not None
    ]


@pytest.mark.kills_teacher
def test_a_dead_engine_is_noticed(teacher: TeacherUnderTest) -> None:
    teacher.chat(QUESTION, {**SAMPLING, "seed": 2, "max_tokens": 4}, n=1)  # it was alive
    teacher.kill()
    started = time.monotonic()
    with pytest.raises(TeacherUnavailable) as raised:
        while time.monotonic() - started < DEAD_NOTICED_WITHIN_S:  # vLLM takes a moment to notice
            teacher.chat(QUESTION, {**SAMPLING, "seed": 2, "max_tokens": 4}, n=1)
            time.sleep(0.5)
    assert time.monotonic() - started < DEAD_NOTICED_WITHIN_S
    if teacher.http_base is not None:
        # A server whose /health fails is not taken back: a job paused for it stays paused.
        assert not teacher.reachable()
    else:
        assert "died" in str(raised.value)


class _StopAt:
    """A partial check that rejects every sample once it has ``tokens`` tokens: to test the abort path
    itself, whatever the model writes."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    def verify_partial(self, candidate: Candidate, seen: int) -> Verdict | None:
        return Verdict.reject("stop", "enough") if candidate.completion_tokens >= self.tokens else None


def _running(teacher: TeacherUnderTest) -> int:
    """Sequences the teacher's engine is running: its own count for each kind."""
    if teacher.http_base is None:
        engine = teacher.loop.run(teacher.teachers.engines._engine(teacher.target))  # type: ignore[arg-type]
        return int(engine.output_processor.get_num_unfinished_requests())
    root = teacher.http_base.removesuffix("/v1")
    if teacher.kind == "standin":
        return int(httpx.get(f"{root}/tracemill/stats").json()["running"])
    metrics = httpx.get(f"{root}/metrics").text
    lines = [line for line in metrics.splitlines() if line.startswith("vllm:num_requests_running")]
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in lines))


def test_a_stream_stops_where_a_check_rejects_frees_its_sequence_and_counts_exactly(
    teacher: TeacherUnderTest,
) -> None:
    stopper = PartialChecks((("stop", _StopAt(20)),))
    sampling = {**SAMPLING, "seed": 3, "max_tokens": 400, "ignore_eos": True}
    watch = stopper.watch(Candidate("", None, None, messages=tuple(QUESTION)))
    result = teacher.loop.run(teacher.teachers.stream(teacher.target, QUESTION, sampling, watch))
    choice = result.choices[0]
    assert choice.finish_reason == "abort" and choice.aborted is not None
    assert (
        choice.aborted.reason == "stop:enough" and choice.aborted.details["aborted_at_token"] == choice.tokens
    )
    assert 20 <= choice.tokens == result.completion_tokens < 400 and (choice.content or choice.reasoning)
    deadline = time.monotonic() + 30
    while _running(teacher) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running(teacher) == 0  # the aborted sequence left the engine
    # Whole streams count their tokens as the reply to the same request does.
    whole = PartialChecks((("stop", _StopAt(10_000)),)).watch(Candidate("", None, None))
    short = {**SAMPLING, "seed": 3, "max_tokens": 24, "ignore_eos": True}
    streamed = teacher.loop.run(teacher.teachers.stream(teacher.target, QUESTION, short, whole))
    replied = teacher.chat(QUESTION, short, n=1)
    assert streamed.choices[0].finish_reason == replied.choices[0].finish_reason == "length"
    assert streamed.completion_tokens == replied.completion_tokens == 24
    assert streamed.prompt_tokens == replied.prompt_tokens


def _prefix_cache_hits(teacher: TeacherUnderTest) -> float:
    """Prompt tokens the vLLM server found in its prefix cache so far (its Prometheus counter)."""
    assert teacher.http_base is not None
    metrics = httpx.get(f"{teacher.http_base.removesuffix('/v1')}/metrics").text
    lines = [line for line in metrics.splitlines() if line.startswith("vllm:prefix_cache_hits_total")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_streams_of_one_prompt_share_its_prefix_cache(teacher: TeacherUnderTest) -> None:
    """With abort_early a prompt's n samples are n streams; vLLM's prefix cache computes their shared
    prompt once, which is why the worker counts its tokens once."""
    if teacher.kind != "vllm-server":
        pytest.skip("only the vLLM server reports its prefix cache (the engine kind runs the same engine)")
    long = [{"role": "user", "content": QUESTION[0]["content"] + " Explain every step in detail." * 60}]
    sampling = {**SAMPLING, "max_tokens": 8}

    def stream(seed: int) -> Awaitable[ChatResult]:
        watch = PartialChecks((("stop", _StopAt(10_000)),)).watch(Candidate("", None, None))
        return teacher.teachers.stream(teacher.target, long, {**sampling, "seed": seed}, watch)

    first = teacher.loop.run(stream(0))  # puts the prompt in the cache
    before = _prefix_cache_hits(teacher)

    async def siblings() -> list[ChatResult]:
        return list(await asyncio.gather(*(stream(seed) for seed in (1, 2, 3))))

    results = teacher.loop.run(siblings())
    assert all(r.prompt_tokens == first.prompt_tokens > 400 for r in results)
    assert _prefix_cache_hits(teacher) - before >= 3 * first.prompt_tokens // 2

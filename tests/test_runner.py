"""A verifier that raises, hangs or kills its process becomes a rejection; the runner keeps serving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from verifiers.base import Candidate, NamedVerdict, Verdict
from verifiers.runner import VerifierRunner, VerifierSpec, named

GOOD = Candidate(completion="<think>a</think> The word is tea.", think="a", answer="The word is tea.")
BAD = Candidate(completion="no think", think=None, answer="no think")


@pytest.fixture(scope="module")
def runner() -> Iterator[VerifierRunner]:
    runner = VerifierRunner(processes=2, timeout_s=1.0)
    yield runner
    runner.close()


def _verify(runner: VerifierRunner, specs: list[VerifierSpec], candidates: list[Candidate]) -> list:  # type: ignore[type-arg]
    return asyncio.run(runner.verify(specs, candidates))


def test_every_verifier_leaves_a_verdict_per_candidate(runner: VerifierRunner) -> None:
    specs = [VerifierSpec("format"), VerifierSpec("keyword", {"word": "tea"})]
    [good, bad] = _verify(runner, specs, [GOOD, BAD])
    assert [v[:3] for v in good] == [("format", True, None), ("keyword", True, None)]
    assert [(v.verifier, v.reason) for v in bad] == [
        ("format", "format:missing_think"),
        ("keyword", "keyword:missing_word"),
    ]


def test_an_exception_is_a_rejection(runner: VerifierRunner) -> None:
    [[fmt, crashed]] = _verify(runner, [VerifierSpec("format"), VerifierSpec("crashing")], [GOOD])
    assert fmt.accepted
    assert crashed.reason == "crashing:error"
    assert "plugin bug" in crashed.details["error"]


def test_a_python_hang_times_out_within_the_bound(runner: VerifierRunner) -> None:
    start = time.monotonic()
    [[verdict]] = _verify(runner, [VerifierSpec("sleepy", {"seconds": 60})], [GOOD])
    assert verdict.reason == "sleepy:timeout"
    assert time.monotonic() - start < 3


def test_a_hang_no_signal_reaches_replaces_the_pool() -> None:
    runner = VerifierRunner(processes=1, timeout_s=0.5)
    try:
        start = time.monotonic()
        [[verdict]] = _verify(runner, [VerifierSpec("stubborn", {"seconds": 60})], [GOOD])
        assert verdict.reason == "stubborn:timeout"
        assert time.monotonic() - start < 15
        assert runner.pools_replaced == 1
        [[after]] = _verify(runner, [VerifierSpec("format")], [GOOD])
        assert after.accepted
    finally:
        runner.close()


def test_calls_made_while_the_pool_is_busy_go_together_and_each_gets_its_own_verdicts() -> None:
    runner = VerifierRunner(processes=1, timeout_s=1.0)
    words = [f"word{i}" for i in range(12)]

    async def verify_all() -> list[list[list[NamedVerdict]]]:
        return await asyncio.gather(
            *(
                runner.verify(
                    [VerifierSpec("keyword", {"word": word})],
                    [Candidate(completion=f"<think>a</think> {word}", think="a", answer=word), BAD],
                )
                for word in words
            )
        )

    try:
        results = asyncio.run(verify_all())
        for [[hit], [miss]] in results:
            assert hit.accepted
            assert miss.reason == "keyword:missing_word"
        assert runner.batches < len(words)  # gathered within the linger, then while the pool was busy
    finally:
        runner.close()


def test_calls_made_within_the_linger_go_to_the_pool_as_one_batch() -> None:
    runner = VerifierRunner(processes=1, timeout_s=1.0, linger_s=0.3)

    async def one_after_another() -> list[list[list[NamedVerdict]]]:
        first = asyncio.ensure_future(runner.verify([VerifierSpec("format")], [GOOD]))
        await asyncio.sleep(0.05)
        second = await runner.verify([VerifierSpec("format")], [BAD])
        return [await first, second]

    try:
        [[[good]], [[bad]]] = asyncio.run(one_after_another())
        assert good.accepted and not bad.accepted
        assert runner.batches == 1
    finally:
        runner.close()


def test_a_batch_stops_lingering_once_its_caller_expects_no_more_calls() -> None:
    runner = VerifierRunner(processes=1, timeout_s=1.0, linger_s=5.0)
    coming = [True]

    def more_coming() -> bool:
        return coming[0]

    async def the_last_calls() -> tuple[list[list[list[NamedVerdict]]], float]:
        await runner.verify([VerifierSpec("format")], [GOOD], lambda: False)  # the pool is up and warm
        started = time.monotonic()
        first = asyncio.ensure_future(runner.verify([VerifierSpec("format")], [GOOD], more_coming))
        await asyncio.sleep(0.05)
        coming[0] = False  # the caller's last reply came: the waiting batch goes now, with this call
        second = await runner.verify([VerifierSpec("format")], [BAD], more_coming)
        return [await first, second], time.monotonic() - started

    try:
        [[[good]], [[bad]]], seconds = asyncio.run(the_last_calls())
        assert good.accepted and not bad.accepted
        assert seconds < 2.5  # not the 5 s linger
        assert runner.batches == 2  # the warm-up call, then the last two together
    finally:
        runner.close()


def test_a_hang_in_a_batch_times_out_only_the_call_that_hangs() -> None:
    runner = VerifierRunner(processes=1, timeout_s=0.5)

    async def together() -> list[list[list[NamedVerdict]]]:
        return await asyncio.gather(
            runner.verify([VerifierSpec("stubborn", {"seconds": 60})], [GOOD]),
            runner.verify([VerifierSpec("format")], [GOOD]),
        )

    try:
        [[[hung]], [[fine]]] = asyncio.run(together())
        assert hung.reason == "stubborn:timeout"
        assert fine.accepted
        assert runner.pools_replaced == 2  # the batch's pool, then the hanging call's own
    finally:
        runner.close()


def test_a_process_that_exits_is_an_error_and_the_pool_recovers() -> None:
    runner = VerifierRunner(processes=1, timeout_s=1.0)
    try:
        [[verdict]] = _verify(runner, [VerifierSpec("exiting")], [GOOD])
        assert verdict.reason == "exiting:error"
        [[after]] = _verify(runner, [VerifierSpec("format")], [GOOD])
        assert after.accepted
    finally:
        runner.close()


@pytest.mark.parametrize(
    ("reason", "stored"),
    [
        (None, None),
        ("keyword:missing_word", "keyword:missing_word"),
        ("kw:missing_word", "keyword:missing_word"),  # the plugin called itself otherwise
        ("missing_word", "keyword:missing_word"),  # a bare code
    ],
)
def test_a_reason_is_stored_under_the_name_the_job_used(reason: str | None, stored: str | None) -> None:
    verdict = Verdict(accepted=reason is None, reason=reason, details={"x": 1})
    assert named("keyword", verdict) == NamedVerdict("keyword", reason is None, stored, {"x": 1})

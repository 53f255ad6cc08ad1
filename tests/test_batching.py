"""The stand-in's engine model: a slot cap with waiting in order, steps that slow as the batch fills,
and completions padded to long-tailed lengths."""

from __future__ import annotations

import asyncio
import statistics
import time

from service.standin.batching import BatchingEngine, EngineModel
from service.standin.text import compose, count_tokens, pad, target_length


async def _finish_times(engine: BatchingEngine, lengths: list[int]) -> list[float]:
    started = time.monotonic()

    async def one(tokens: int) -> float:
        await engine.generate(tokens)
        return time.monotonic() - started

    return list(await asyncio.gather(*(one(tokens) for tokens in lengths)))


def test_sequences_past_the_cap_wait_for_a_slot() -> None:
    engine = BatchingEngine(EngineModel(max_num_seqs=2, token_s=0.01))
    first, second, third, fourth = asyncio.run(_finish_times(engine, [10, 10, 10, 30]))
    assert 0.08 < first < 0.2 and 0.08 < second < 0.2  # 10 steps of 10 ms
    assert 0.18 < third < 0.35  # started when a first slot freed
    assert 0.38 < fourth < 0.6  # 30 steps after the second slot freed


def test_a_full_batch_steps_slower() -> None:
    model = EngineModel(max_num_seqs=4, token_s=0.01, slowdown=1.0)
    alone = asyncio.run(_finish_times(BatchingEngine(model), [10]))[0]
    full = max(asyncio.run(_finish_times(BatchingEngine(model), [10] * 4)))
    assert 0.08 < alone < 0.16 and 0.18 < full < 0.3  # twice as long per step when full


def test_no_delay_means_no_waiting() -> None:
    """With no prefill and no per-token time, a sequence is done at its first step: checked by steps
    of the event loop, not by the clock, which a busy machine can stall."""

    async def done_after_one_step() -> bool:
        engine = BatchingEngine(EngineModel())
        sequences = [asyncio.ensure_future(engine.generate(1000)) for _ in range(500)]
        await asyncio.sleep(0)
        return all(sequence.done() for sequence in sequences) and engine.running == 0

    assert asyncio.run(done_after_one_step())


def test_padding_reaches_a_log_normal_length() -> None:
    lengths = [target_length("Compute 2 + 3.", 7, i, median=1500, sigma=0.6) for i in range(400)]
    assert lengths == [target_length("Compute 2 + 3.", 7, i, median=1500, sigma=0.6) for i in range(400)]
    assert 1300 < statistics.median(lengths) < 1700 and max(lengths) > 3 * min(lengths)
    text = compose("Compute 2 + 3.", 7, 0, 1.0)
    padded = pad(text, 2000)
    assert 1980 <= count_tokens(padded) <= 2000
    assert padded.startswith("<think>\n") and padded.endswith(text.rpartition("</think>")[2])
    assert pad(text, 5) == text

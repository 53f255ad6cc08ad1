"""The ceiling of the throughput bench: a bare asyncio client (aiohttp, the fastest Python client measured
here) that keeps the same requests out to the same teacher and only reads the replies; streamed, it
sends each sample as a request of its own and parses every event, as the workers then do.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench.measure import Run, in_flight_share
from bench.regimes import SEED, WARM_UP_MAX_TOKENS, Regime, prompts
from service.standin.server import DEFAULT_MODEL
from workers.process import task_seed


async def _streamed_usage(response: aiohttp.ClientResponse) -> int:
    """Read a streamed reply to its end, each event parsed (as any client must, to see the text); the
    completion tokens of its last usage."""
    pending, tokens = b"", 0
    async for received in response.content.iter_any():
        *events, pending = (pending + received).split(b"\n\n")
        for event in events:
            data = event.removeprefix(b"data: ")
            if data != b"[DONE]":
                tokens = (json.loads(data).get("usage") or {}).get("completion_tokens", tokens)
    return int(tokens)


async def _bare(teacher_url: str, regime: Regime, streaming: bool) -> Run:
    """The warm-up round, then the timed one, on one session (so on the same connections). With
    ``streaming``, each sample is a streamed request of its own (seeded as the i-th choice would be)
    and a prompt's n streams hold one slot together, as a job with ``abort_early`` sends them."""
    slots = asyncio.Semaphore(regime.in_flight)
    tokens = samples = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def request(body: dict[str, Any]) -> None:
            nonlocal tokens, samples
            async with session.post(f"{teacher_url}/v1/chat/completions", json=body) as response:
                if streaming:
                    used = await _streamed_usage(response)  # not ``tokens += await``: that reads
                    tokens, samples = tokens + used, samples + 1  # ``tokens`` before the await
                else:
                    reply = await response.json()
                    tokens += reply["usage"]["completion_tokens"]
                    samples += len(reply["choices"])

        async def one(item: dict[str, str], max_tokens: int) -> None:
            body = {
                "model": DEFAULT_MODEL,
                "messages": [{"role": "user", "content": item["prompt"]}],
                "n": regime.n,
                "temperature": 0.6,
                "top_p": 0.95,
                "max_tokens": max_tokens,
                "seed": task_seed(SEED, item["id"]),
            }
            options = {"include_usage": True, "continuous_usage_stats": True}
            streams = [
                {**body, "n": 1, "seed": body["seed"] + i, "stream": True, "stream_options": options}
                for i in range(regime.n)
            ]
            async with slots:
                await asyncio.gather(*map(request, streams if streaming else [body]))

        warm_up = prompts(regime.in_flight, prefix="warm-up")
        await asyncio.gather(*(one(item, WARM_UP_MAX_TOKENS) for item in warm_up))
        async with session.get(f"{teacher_url}/tracemill/stats", params={"reset": 1}) as response:
            response.raise_for_status()
        tokens = samples = 0
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(item, regime.max_tokens) for item in prompts(regime.prompts)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(samples, tokens, seconds, client_cpu_s=cpu)


def bare_client(teacher_url: str, regime: Regime, streaming: bool) -> Run:
    run = asyncio.run(_bare(teacher_url, regime, streaming))
    share, first, last = in_flight_share(teacher_url, regime.requests_out(streaming))
    run.in_flight_share, run.teacher_span_s = share, last - first
    return run

"""A deterministic OpenAI-compatible teacher for tests, the demo and the benchmarks.

It speaks vLLM's protocol (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/health``;
``n``, ``seed``, ``max_tokens``, ``usage``; errors as ``{"error": {...}}``) and writes R1-style
``<think>…</think>`` reasoning. When the prompt holds an arithmetic expression it works it out and
answers right in ``correct_share`` of the samples; the rest are wrong, malformed, over-long or
language-mixed, so that every verifier has something real to accept and reject. Asked a judge's
question, it judges (``service/standin/judge.py``). The same request with
the same seed always gets the same answer. Faults (429, 503, hangs) can be injected at set rates, and
``POST /tracemill/engine {"alive": false}`` makes it act as a vLLM server whose engine has died: 503 on
``/health``, 500 ``EngineDeadError`` on every completion request.

Timing follows a continuous-batching engine (``service/standin/batching.py``): ``max_num_seqs`` sequences at
once, a time to first token, a per-token step that slows as the batch fills. With ``length_median``
set, completions are padded to long-tailed (log-normal) lengths, as reasoning traces are.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from service.standin.batching import BatchingEngine, EngineModel
from service.standin.judge import is_judge_question, judge_reply
from service.standin.logprobs import chat_logprobs
from service.standin.stream import stream_chat
from service.standin.text import (
    compose,
    count_tokens,
    drifting,
    is_hard,
    looping,
    pad,
    seeded_rng,
    target_length,
    truncate,
)

DEFAULT_MODEL = "tracemill-standin"
MAX_INTERVALS = 1_000_000


@dataclass(frozen=True)
class StandinConfig:
    """How the stand-in behaves; rates are per request, delays in seconds."""

    model: str = DEFAULT_MODEL
    correct_share: float = 0.6
    ttft_s: float = 0.0
    token_delay_s: float = 0.0  # one engine step with a lone sequence
    max_num_seqs: int = 256
    batch_slowdown: float = 0.0  # a full batch's step is (1 + this) times a lone sequence's
    length_median: int = 0  # 0: completions as composed; else padded to log-normal lengths
    length_sigma: float = 0.6
    # Samples that fail in ways worth aborting early: loop until max_tokens, switch language halfway,
    # or run to 90% of max_tokens (each a share of all samples).
    loop_share: float = 0.0
    drift_share: float = 0.0
    long_share: float = 0.0
    stream_interval: int = 16  # tokens per streamed chunk (vLLM's --stream-interval)
    # A difficulty profile: a prompt whose arithmetic holds a number above ``hard_above`` is hard, and
    # its samples are right in ``hard_correct_share`` of them instead (``hard_above`` 0: no profile).
    # A weak student is ``hard_above=20, hard_correct_share=0``: it solves only sums of small numbers.
    hard_above: int = 0
    hard_correct_share: float = 0.0
    error_429_rate: float = 0.0
    error_503_rate: float = 0.0
    hang_rate: float = 0.0
    fault_seed: int = 0


def _error(status: int, message: str, kind: str = "BadRequestError", **headers: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return web.json_response(body, status=status, headers=headers)


class Standin:
    """The aiohttp application and its state (request counter for fault injection, concurrency cap)."""

    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.requests = 0
        self.engine = BatchingEngine(
            EngineModel(config.max_num_seqs, config.ttft_s, config.token_delay_s, config.batch_slowdown)
        )
        self.intervals: list[tuple[float, float]] = []  # (arrival, reply) of each completion request
        self.engine_alive = True
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(
            [
                web.get("/health", self.health),
                web.get("/v1/models", self.models),
                web.get("/tracemill/stats", self.stats),
                web.post("/tracemill/engine", self.set_engine),
                web.post("/v1/chat/completions", self.chat),
                web.post("/v1/completions", self.completions),
            ]
        )

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(text="", status=200 if self.engine_alive else 503)

    async def set_engine(self, request: web.Request) -> web.Response:
        """Not OpenAI's: kill or revive the pretend engine, to test how clients notice a dead one."""
        body = await request.json()
        self.engine_alive = bool(body.get("alive", True))
        return web.json_response({"alive": self.engine_alive})

    async def stats(self, request: web.Request) -> web.Response:
        """Not OpenAI's: when each completion request arrived and was answered, for load benchmarks.

        ``?reset=1`` also forgets them, so that one server can serve several measured runs.
        """
        body = {
            "now": time.monotonic(),
            "intervals": self.intervals,
            "running": self.engine.running,
            "waiting": self.engine.waiting,
        }
        if request.query.get("reset"):
            self.intervals = []
        return web.json_response(body)

    async def models(self, _request: web.Request) -> web.Response:
        card = {"id": self.config.model, "object": "model", "created": 0, "owned_by": "tracemill"}
        return web.json_response({"object": "list", "data": [card]})

    async def _fault(self) -> web.Response | None:
        self.requests += 1
        rng = seeded_rng("fault", self.config.fault_seed, self.requests)
        draw = rng.random()
        if draw < self.config.error_429_rate:
            return _error(429, "Too many requests", "RateLimitError", **{"Retry-After": "0"})
        draw -= self.config.error_429_rate
        if draw < self.config.error_503_rate:
            return _error(503, "The engine is currently busy", "ServiceUnavailableError")
        draw -= self.config.error_503_rate
        if draw < self.config.hang_rate:
            await asyncio.Event().wait()  # hangs until the client gives up and disconnects
        return None

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        if body.get("model") != self.config.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        n, max_tokens = body.get("n", 1), body.get("max_tokens", 16)
        if not isinstance(n, int) or n < 1:
            return _error(400, "n must be at least 1")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, "max_tokens must be at least 1")
        return body

    def _sample(self, prompt: str, seed: int, max_tokens: int) -> tuple[str, str]:
        """One sample's text and finish reason. A sample is a function of its own seed: choice ``i`` of
        a request seeded ``s`` is the lone choice of one seeded ``s + i``, as in vLLM."""
        config = self.config
        if is_judge_question(prompt):
            text = judge_reply(prompt)
        elif config.hard_above and is_hard(prompt, config.hard_above):
            text = compose(prompt, seed, 0, config.hard_correct_share, failures=("wrong",))
        else:
            text = compose(prompt, seed, 0, config.correct_share)
        length = count_tokens(text)
        if config.length_median:
            length = target_length(prompt, seed, 0, config.length_median, config.length_sigma)
            text = pad(text, length)
        draw = seeded_rng("shape", seed, prompt).random()
        if (
            not is_judge_question(prompt)
            and draw < config.loop_share + config.drift_share + config.long_share
        ):
            correct = compose(prompt, seed, 0, 1.0)
            if draw < config.loop_share:
                text = looping(prompt, max_tokens)
            elif draw < config.loop_share + config.drift_share:
                text = drifting(correct, max(length, 2 * count_tokens(correct)))
            else:
                text = pad(correct, int(0.9 * max_tokens))
        text, _, cut = truncate(text, max_tokens)
        return text, "length" if cut else "stop"

    def _seed(self, body: dict[str, Any]) -> int:
        seed = body.get("seed")
        return seed if isinstance(seed, int) else random.randrange(2**31)

    async def _generate(self, body: dict[str, Any], prompt: str) -> tuple[list[tuple[str, str]], int]:
        seed = self._seed(body)
        outputs = [
            self._sample(prompt, seed + index, body.get("max_tokens", 16))
            for index in range(body.get("n", 1))
        ]
        await asyncio.gather(*(self.engine.generate(count_tokens(text)) for text, _ in outputs))
        return outputs, count_tokens(prompt)

    def _envelope(
        self, kind: str, choices: list[dict[str, Any]], prompt_tokens: int, completion: int
    ) -> dict[str, Any]:
        return {
            "id": f"{kind}-{self.requests}",
            "object": kind,
            "created": int(time.time()),
            "model": self.config.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
        }

    async def _complete(
        self,
        request: web.Request,
        kind: str,
        prompt_of: Callable[[dict[str, Any]], str | None],
        choice_of: Callable[[int, str, str, dict[str, Any]], dict[str, Any]],
    ) -> web.StreamResponse:
        """The steps both endpoints share: faults, validation, generation, the envelope."""
        if not self.engine_alive:
            message = "EngineCore encountered an issue. See stack trace (above) for the root cause."
            return _error(500, message, "EngineDeadError")
        fault = await self._fault()
        if fault is not None:
            return fault
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        prompt = prompt_of(body)
        if prompt is None:
            field = "messages" if kind == "chat.completion" else "prompt"
            return _error(400, f"{field} must be non-empty")
        arrived = time.monotonic()
        if body.get("stream") and kind == "chat.completion":
            return await self._stream(request, body, prompt, arrived)
        outputs, prompt_tokens = await self._generate(body, prompt)
        self._answered(arrived)
        choices = [choice_of(i, text, reason, body) for i, (text, reason) in enumerate(outputs)]
        used = sum(count_tokens(text) for text, _ in outputs)
        return web.json_response(self._envelope(kind, choices, prompt_tokens, used))

    async def _stream(
        self, request: web.Request, body: dict[str, Any], prompt: str, arrived: float
    ) -> web.StreamResponse:
        if body.get("n", 1) != 1:
            return _error(400, "the stand-in streams one choice per request: send n=1")
        sample = self._sample(prompt, self._seed(body), body.get("max_tokens", 16))
        response = await stream_chat(request, body, sample, count_tokens(prompt), self)
        self._answered(arrived)
        return response

    def _answered(self, arrived: float) -> None:
        """Note a completion request's arrival and reply times (``/tracemill/stats``)."""
        if len(self.intervals) < MAX_INTERVALS:
            self.intervals.append((arrived, time.monotonic()))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        def prompt_of(body: dict[str, Any]) -> str | None:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return None
            return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))

        def choice_of(index: int, text: str, reason: str, body: dict[str, Any]) -> dict[str, Any]:
            message = {"role": "assistant", "content": text, "reasoning": None}
            choice = {"index": index, "message": message, "logprobs": None, "finish_reason": reason}
            if body.get("logprobs"):
                choice |= chat_logprobs(text, body, index)
            return choice

        return await self._complete(request, "chat.completion", prompt_of, choice_of)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        def prompt_of(body: dict[str, Any]) -> str | None:
            prompt = body.get("prompt")
            return prompt if isinstance(prompt, str) and prompt else None

        def choice_of(index: int, text: str, reason: str, _body: dict[str, Any]) -> dict[str, Any]:
            return {"index": index, "text": text, "logprobs": None, "finish_reason": reason}

        return await self._complete(request, "text_completion", prompt_of, choice_of)


async def serve_standin(config: StandinConfig, host: str, port: int, ready: Callable[[int], None]) -> None:
    """Run until cancelled; ``ready`` gets the bound port (useful with ``port=0``)."""
    runner = web.AppRunner(Standin(config).app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    ready(int(runner.addresses[0][1]))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()

"""A deterministic OpenAI-compatible teacher for tests, the demo and the benchmarks.

It speaks vLLM's protocol (``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/health``;
``n``, ``seed``, ``max_tokens``, ``usage``; errors as ``{"error": {...}}``) and writes R1-style
``<think>…</think>`` reasoning. When the prompt holds an arithmetic expression it works it out and
answers right in ``correct_share`` of the samples; the rest are wrong, malformed, over-long or
language-mixed, so that every verifier has something real to accept and reject. The same request with
the same seed always gets the same answer. Faults (429, 503, hangs) can be injected at set rates.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import itertools
import json
import operator
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from aiohttp import web

DEFAULT_MODEL = "tracemill-standin"
KINDS = ("correct", "wrong", "malformed", "overlong", "langmix")
_EXPRESSION = re.compile(r"[\d(][\d\s+\-*/^().]*[\d)]")
_TOKEN = re.compile(r"[\u3400-\u9fff]|[^\W\u3400-\u9fff]+|[^\w\s]")
_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^"}
_CHINESE = "我们先把这个表达式拆开来计算，然后再检查每一步的结果是否正确。"
MAX_EXPONENT = 64


@dataclass(frozen=True)
class StandinConfig:
    """How the stand-in behaves; rates are per request, delays in seconds."""

    model: str = DEFAULT_MODEL
    correct_share: float = 0.6
    ttft_s: float = 0.0
    token_delay_s: float = 0.0
    max_concurrency: int = 256
    error_429_rate: float = 0.0
    error_503_rate: float = 0.0
    hang_rate: float = 0.0
    fault_seed: int = 0


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: words, CJK characters and punctuation marks each count one."""
    return sum(1 for _ in _TOKEN.finditer(text))


def _truncate(text: str, max_tokens: int) -> tuple[str, int, bool]:
    spans = [m.end() for m in itertools.islice(_TOKEN.finditer(text), max_tokens + 1)]
    if len(spans) <= max_tokens:
        return text, len(spans), False
    return text[: spans[max_tokens - 1]], max_tokens, True


def _evaluate(node: ast.AST, steps: list[str]) -> Fraction:
    """Exact rational evaluation that records each binary step, as a person would write it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, steps)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, steps), _evaluate(node.right, steps)
        if isinstance(node.op, ast.Pow) and (right.denominator != 1 or abs(right) > MAX_EXPONENT):
            raise ValueError("exponent out of range")
        value = Fraction(_OPS[type(node.op)](left, right))
        steps.append(f"{_show(left)} {_SYMBOL[type(node.op)]} {_show(right)} = {_show(value)}")
        return value
    raise ValueError("not arithmetic")


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def solve(prompt: str) -> tuple[str, Fraction, list[str]] | None:
    """The longest arithmetic expression in the prompt, its value and the steps; None if none."""
    for candidate in sorted(_EXPRESSION.findall(prompt), key=len, reverse=True):
        expression = candidate.strip()
        if not any(op in expression for op in "+-*/^"):
            continue
        steps: list[str] = []
        try:
            tree = ast.parse(expression.replace("^", "**"), mode="eval")
            return expression, _evaluate(tree.body, steps), steps
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
            continue
    return None


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _choose_kind(rng: random.Random, correct_share: float) -> str:
    if rng.random() < correct_share:
        return "correct"
    return rng.choice(KINDS[1:])


def compose(prompt: str, seed: int, index: int, correct_share: float) -> str:
    """The full completion for sample ``index`` of ``prompt`` under ``seed``."""
    rng = _rng(seed, index, prompt)
    kind = _choose_kind(rng, correct_share)
    solved = solve(prompt)
    if solved is None:
        think_lines = [
            "The question does not contain arithmetic I can work out.",
            "I will answer as plainly as I can.",
        ]
        answer = "I cannot determine a numeric answer to this question."
    else:
        expression, value, steps = solved
        final = value + rng.choice((-3, -2, -1, 1, 2, 5, 10)) if kind == "wrong" else value
        think_lines = [
            f"Let me work through {expression} step by step.",
            *steps,
            f"So the result is {_show(final)}.",
        ]
        answer = f"The answer is $\\boxed{{{_latex(final)}}}$."
    if kind == "langmix":
        think_lines.insert(1, _CHINESE)
    if kind == "overlong":
        think_lines.insert(1, " ".join([f"Let me double-check {think_lines[0].lower()}"] * 60))
    think = "\n".join(think_lines)
    if kind == "malformed":
        shape = rng.choice(("unclosed", "no_think", "double"))
        if shape == "unclosed":
            return f"<think>\n{think}\n\n{answer}"
        if shape == "no_think":
            return answer
        return f"<think>\n{think}\n</think>\n<think>\n{think}\n</think>\n\n{answer}"
    return f"<think>\n{think}\n</think>\n\n{answer}"


def _error(status: int, message: str, kind: str = "BadRequestError", **headers: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return web.json_response(body, status=status, headers=headers)


class Standin:
    """The aiohttp application and its state (request counter for fault injection, concurrency cap)."""

    def __init__(self, config: StandinConfig) -> None:
        self.config = config
        self.requests = 0
        self.slots = asyncio.Semaphore(config.max_concurrency)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(
            [
                web.get("/health", self.health),
                web.get("/v1/models", self.models),
                web.post("/v1/chat/completions", self.chat),
                web.post("/v1/completions", self.completions),
            ]
        )

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(text="")

    async def models(self, _request: web.Request) -> web.Response:
        card = {"id": self.config.model, "object": "model", "created": 0, "owned_by": "tracemill"}
        return web.json_response({"object": "list", "data": [card]})

    async def _fault(self) -> web.Response | None:
        self.requests += 1
        rng = _rng("fault", self.config.fault_seed, self.requests)
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

    async def _generate(self, body: dict[str, Any], prompt: str) -> tuple[list[tuple[str, str]], int]:
        seed = body.get("seed")
        seed = seed if isinstance(seed, int) else random.randrange(2**31)
        outputs = []
        for index in range(body.get("n", 1)):
            text = compose(prompt, seed, index, self.config.correct_share)
            text, _, cut = _truncate(text, body.get("max_tokens", 16))
            outputs.append((text, "length" if cut else "stop"))
        longest = max(count_tokens(text) for text, _ in outputs)
        async with self.slots:
            delay = self.config.ttft_s + self.config.token_delay_s * longest
            if delay:
                await asyncio.sleep(delay)
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
        choice_of: Callable[[int, str, str], dict[str, Any]],
    ) -> web.Response:
        """The steps both endpoints share: faults, validation, generation, the envelope."""
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
        outputs, prompt_tokens = await self._generate(body, prompt)
        choices = [choice_of(i, text, reason) for i, (text, reason) in enumerate(outputs)]
        used = sum(count_tokens(text) for text, _ in outputs)
        return web.json_response(self._envelope(kind, choices, prompt_tokens, used))

    async def chat(self, request: web.Request) -> web.Response:
        def prompt_of(body: dict[str, Any]) -> str | None:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return None
            return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))

        def choice_of(index: int, text: str, reason: str) -> dict[str, Any]:
            message = {"role": "assistant", "content": text, "reasoning": None}
            return {"index": index, "message": message, "logprobs": None, "finish_reason": reason}

        return await self._complete(request, "chat.completion", prompt_of, choice_of)

    async def completions(self, request: web.Request) -> web.Response:
        def prompt_of(body: dict[str, Any]) -> str | None:
            prompt = body.get("prompt")
            return prompt if isinstance(prompt, str) and prompt else None

        def choice_of(index: int, text: str, reason: str) -> dict[str, Any]:
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

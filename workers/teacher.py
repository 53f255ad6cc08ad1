"""Async client for an OpenAI-compatible teacher (vLLM's server is the reference).

Retryable faults (429, 5xx, timeouts, dropped connections) back off exponentially with jitter and
honour ``Retry-After``; once the retries are spent the caller gets ``TeacherUnavailable`` and requeues
the task. Other 4xx answers are the request's own fault: ``TeacherRejected``. After a 5xx the server's
``/health`` is asked: vLLM answers 503 there once its engine has died, which no retry can cure, so such a
server is benched at once (and with no other server, the caller hears so without waiting out retries).
Redirects are never followed: the job's host was checked against the operator's list, and the address
a redirect points to was not.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from service.errors import TeacherRejected, TeacherUnavailable
from service.storage.soft_labels import SoftLabels, from_openai
from verifiers.base import NamedVerdict

if TYPE_CHECKING:
    from workers.early_abort import StreamWatch

ABORTED = "abort"  # the finish reason of an aborted sample, as vLLM reports an aborted request

DEFAULT_REQUEST_TIMEOUT_S = 600.0
DEFAULT_MAX_RETRIES = 4
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
SERVER_FAULTS = frozenset({500, 502, 503, 504})
NO_HEALTH_ENDPOINT = frozenset({404, 405})
BENCH_BASE_S = 1.0
BENCH_MAX_S = 60.0
PROBE_TIMEOUT_S = 5.0
ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Choice:
    index: int
    content: str | None
    reasoning: str | None
    finish_reason: str | None
    soft_labels: SoftLabels | None = None
    tokens: int | None = None  # this choice's own tokens, where the teacher counted them apart
    aborted: NamedVerdict | None = None  # the early check that ended its stream


@dataclass(frozen=True)
class ChatResult:
    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TeacherEndpoint:
    """Where the teacher is (one or several servers) and how to reach it; the API key comes from the
    worker's environment."""

    base_urls: tuple[str, ...]
    model: str
    api_key: str | None = None
    timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Full-jitter exponential backoff, never shorter than the server's ``Retry-After``."""
    delay = random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt))
    return max(delay, retry_after or 0.0)


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


def health_url(base_url: str) -> str:
    """vLLM serves ``/health`` at the server's root, beside ``/v1``."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1") + "/health"


def _error_text(body: Any, status: int) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    message = message or (body.get("message") if isinstance(body, dict) else None) or str(body)
    return f"HTTP {status}: {message}"[:ERROR_TEXT_LIMIT]


class ServerHealth:
    """Spreads requests over a job's servers and benches one that fails, for longer each time."""

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._down_until: dict[str, float] = {}
        self._turn = 0

    def pick(self, urls: tuple[str, ...]) -> str:
        """The next healthy server in turn; when all are benched, the one back soonest."""
        now = time.monotonic()
        healthy = [u for u in urls if self._down_until.get(u, 0.0) <= now]
        self._turn += 1
        if healthy:
            return healthy[self._turn % len(healthy)]
        return min(urls, key=lambda u: self._down_until.get(u, 0.0))

    def any_healthy(self, urls: tuple[str, ...]) -> bool:
        now = time.monotonic()
        return any(self._down_until.get(u, 0.0) <= now for u in urls)

    def failed(self, url: str) -> None:
        self._failures[url] = self._failures.get(url, 0) + 1
        self._down_until[url] = time.monotonic() + min(
            BENCH_MAX_S, BENCH_BASE_S * 2 ** (self._failures[url] - 1)
        )

    def dead(self, url: str) -> None:
        """Bench a server whose engine is dead for as long as benching goes."""
        self._failures[url] = max(self._failures.get(url, 0), 1)
        self._down_until[url] = time.monotonic() + BENCH_MAX_S

    def succeeded(self, url: str) -> None:
        self._failures.pop(url, None)
        self._down_until.pop(url, None)


class TeacherClient:
    """One aiohttp session shared by every request of a worker, and what it knows of server health."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.health = ServerHealth()

    async def chat(
        self,
        endpoint: TeacherEndpoint,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        n: int,
        top_logprobs: int | None = None,
    ) -> ChatResult:
        """Ask for ``n`` completions of one conversation, retrying what may succeed later; with
        ``top_logprobs``, each token's top log-probabilities too, by token id (vLLM's extensions
        ``return_tokens_as_token_ids`` and ``return_token_ids``)."""
        payload = {"model": endpoint.model, "messages": messages, "n": n, **sampling}
        if top_logprobs:
            payload |= {
                "logprobs": True,
                "top_logprobs": top_logprobs,
                "return_tokens_as_token_ids": True,
                "return_token_ids": True,
            }

        async def read(resp: aiohttp.ClientResponse) -> ChatResult:
            return _parse(await resp.json(content_type=None), top_logprobs)

        return await self._send(endpoint, payload, read)

    async def stream(
        self,
        endpoint: TeacherEndpoint,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        watch: StreamWatch,
    ) -> ChatResult:
        """One completion, streamed, each chunk handed to ``watch``; the stream is closed as soon as
        the watch rejects the sample (vLLM aborts the request of a closed connection). Tokens come
        from vLLM's usage on every chunk (``continuous_usage_stats``), so an aborted sample's count is
        the tokens that reached the worker; a server without it is counted one token a chunk."""
        payload = {
            "model": endpoint.model,
            "messages": messages,
            "n": 1,
            **sampling,
            "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        }

        async def read(resp: aiohttp.ClientResponse) -> ChatResult:
            watch.restart()
            prompt_tokens, finish_reason, chunks = 0, None, 0
            async for data in _events(resp):
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    raise ValueError(f"the stream broke off: {_error_text(chunk, 500)}")
                usage = chunk.get("usage") or {}
                prompt_tokens = int(usage.get("prompt_tokens") or prompt_tokens)
                counted = usage.get("completion_tokens")
                if counted is not None:  # also on the last chunk, which has the usage and no choice
                    watch.tokens = int(counted)
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    finish_reason = choice.get("finish_reason") or finish_reason
                    content = delta.get("content")
                    reasoning = delta.get("reasoning") or delta.get("reasoning_content")
                    chunks += bool(content or reasoning)  # the first chunk only names the role
                    tokens = int(counted) if counted is not None else chunks
                    if watch.add(content, reasoning, tokens) is not None:
                        resp.close()
                        return _streamed(watch, prompt_tokens, ABORTED)
            return _streamed(watch, prompt_tokens, finish_reason)

        return await self._send(endpoint, payload, read)

    async def _send(
        self,
        endpoint: TeacherEndpoint,
        payload: dict[str, Any],
        read: Callable[[aiohttp.ClientResponse], Awaitable[ChatResult]],
    ) -> ChatResult:
        """Post a completion request, retrying what may succeed later; ``read`` reads a 200 reply (a
        fault while it reads is retried like one before it)."""
        headers = endpoint.headers
        last_error = ""
        for attempt in range(endpoint.max_retries + 1):
            retry_after: float | None = None
            base = self.health.pick(endpoint.base_urls)
            url = base.rstrip("/") + "/chat/completions"
            try:
                timeout = aiohttp.ClientTimeout(total=endpoint.timeout_s)
                async with self.session.post(
                    url, json=payload, headers=headers, timeout=timeout, allow_redirects=False
                ) as resp:
                    if 300 <= resp.status < 400:
                        raise TeacherRejected(f"{base}: HTTP {resp.status}: redirects are not followed")
                    if resp.status == 200:
                        result = await read(resp)
                        self.health.succeeded(base)
                        return result
                    body = await resp.json(content_type=None)
                    last_error = f"{base}: {_error_text(body, resp.status)}"
                    if resp.status not in RETRYABLE_STATUS:
                        raise TeacherRejected(last_error, status=resp.status)
                    retry_after = _retry_after(resp.headers)
                    if resp.status != 429:  # overloaded is not down
                        self.health.failed(base)
                if resp.status in SERVER_FAULTS and await self._health(base, headers) is False:
                    last_error += f" ({health_url(base)} fails too: the server's engine is dead)"
                    self.health.dead(base)
                    if not self._other_server(endpoint, base):
                        raise TeacherUnavailable(f"teacher unreachable: {last_error}")
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                last_error = f"{base}: {type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]
                self.health.failed(base)
            if attempt < endpoint.max_retries and not (
                retry_after is None and self._other_server(endpoint, base)
            ):
                await asyncio.sleep(backoff_delay(attempt, retry_after))
        raise TeacherUnavailable(f"teacher unreachable after {endpoint.max_retries + 1} tries: {last_error}")

    def _other_server(self, endpoint: TeacherEndpoint, failed: str) -> bool:
        """Whether another healthy server can take the retry at once, without backing off."""
        others = tuple(u for u in endpoint.base_urls if u != failed)
        return bool(others) and self.health.any_healthy(others)

    async def _status(self, url: str, headers: dict[str, str]) -> int | None:
        """The status a quick GET gets, None if the server does not answer."""
        try:
            timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
            async with self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False) as resp:
                return resp.status
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def _health(self, base: str, headers: dict[str, str]) -> bool | None:
        """``/health``'s verdict on a server: True or False, None where it has no such endpoint or
        does not answer (then only its API can tell)."""
        status = await self._status(health_url(base), headers)
        return None if status is None or status in NO_HEALTH_ENDPOINT else status == 200

    async def reachable(self, endpoint: TeacherEndpoint) -> bool:
        """Whether any of the servers is up (used to resume a paused job): its ``/health`` answers 200,
        or, for servers without one, ``GET /models`` does."""
        headers = endpoint.headers
        for base in endpoint.base_urls:
            healthy = await self._health(base, headers)
            if healthy is None:
                healthy = await self._status(base.rstrip("/") + "/models", headers) == 200
            if healthy:
                self.health.succeeded(base)
                return True
        return False


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The ``data:`` payloads of a server-sent-events body, from reads of whatever arrived (one await
    per read, not per line: a stream's events come many to a read)."""
    pending = b""
    async for received in resp.content.iter_any():
        pending += received
        *events, pending = pending.split(b"\n\n")
        for event in events:
            for line in event.splitlines():
                if line.startswith(b"data:"):
                    yield line[5:].strip()


def _streamed(watch: StreamWatch, prompt_tokens: int, finish_reason: str | None) -> ChatResult:
    """A streamed sample as a one-choice reply, with its own token count and what aborted it."""
    content, reasoning = watch.text
    choice = Choice(0, content, reasoning, finish_reason, tokens=watch.tokens, aborted=watch.verdict)
    return ChatResult([choice], prompt_tokens, watch.tokens)


def _parse(body: dict[str, Any], top_logprobs: int | None = None) -> ChatResult:
    try:
        choices = [
            Choice(
                index=int(c["index"]),
                content=c["message"].get("content"),
                reasoning=c["message"].get("reasoning") or c["message"].get("reasoning_content"),
                finish_reason=c.get("finish_reason"),
                soft_labels=_soft_labels(c, top_logprobs) if top_logprobs else None,
            )
            for c in body["choices"]
        ]
        usage = body.get("usage") or {}
        return ChatResult(
            sorted(choices, key=lambda c: c.index),
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TeacherRejected(f"malformed teacher response: {type(exc).__name__}: {exc}") from exc


def _soft_labels(choice: dict[str, Any], top_k: int) -> SoftLabels:
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        raise TeacherRejected("the teacher returned no logprobs although they were asked for (soft_labels)")
    return from_openai(content, top_k, choice.get("token_ids"))

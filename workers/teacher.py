"""Async client for an OpenAI-compatible teacher (vLLM's server is the reference).

Retryable faults (429, 5xx, timeouts, dropped connections) back off exponentially with jitter and
honour ``Retry-After``; once the retries are spent the caller gets ``TeacherUnavailable`` and requeues
the task. Other 4xx answers are the request's own fault: ``TeacherRejected``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from service.errors import TeacherRejected, TeacherUnavailable

DEFAULT_REQUEST_TIMEOUT_S = 600.0
DEFAULT_MAX_RETRIES = 4
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Choice:
    index: int
    content: str | None
    reasoning: str | None
    finish_reason: str | None


@dataclass(frozen=True)
class ChatResult:
    choices: list[Choice]
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TeacherEndpoint:
    """Where the teacher is and how to reach it; the API key comes from the worker's environment."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Full-jitter exponential backoff, never shorter than the server's ``Retry-After``."""
    delay = random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt))
    return max(delay, retry_after or 0.0)


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


def _error_text(body: Any, status: int) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    message = message or (body.get("message") if isinstance(body, dict) else None) or str(body)
    return f"HTTP {status}: {message}"[:ERROR_TEXT_LIMIT]


class TeacherClient:
    """One aiohttp session shared by every request of a worker."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def chat(
        self, endpoint: TeacherEndpoint, messages: list[dict[str, str]], sampling: dict[str, Any], n: int
    ) -> ChatResult:
        """Ask for ``n`` completions of one conversation, retrying what may succeed later."""
        payload = {"model": endpoint.model, "messages": messages, "n": n, **sampling}
        headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        url = endpoint.base_url.rstrip("/") + "/chat/completions"
        last_error = ""
        for attempt in range(endpoint.max_retries + 1):
            retry_after: float | None = None
            try:
                timeout = aiohttp.ClientTimeout(total=endpoint.timeout_s)
                async with self.session.post(url, json=payload, headers=headers, timeout=timeout) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 200:
                        return _parse(body)
                    last_error = _error_text(body, resp.status)
                    if resp.status not in RETRYABLE_STATUS:
                        raise TeacherRejected(last_error)
                    retry_after = _retry_after(resp.headers)
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT] or type(exc).__name__
            if attempt < endpoint.max_retries:
                await asyncio.sleep(backoff_delay(attempt, retry_after))
        raise TeacherUnavailable(f"teacher at {endpoint.base_url} failed: {last_error}")


def _parse(body: dict[str, Any]) -> ChatResult:
    try:
        choices = [
            Choice(
                index=int(c["index"]),
                content=c["message"].get("content"),
                reasoning=c["message"].get("reasoning") or c["message"].get("reasoning_content"),
                finish_reason=c.get("finish_reason"),
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

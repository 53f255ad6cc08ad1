"""The stand-in's streamed chat completions, in vLLM's server-sent-events shape.

One chunk per ``stream_interval`` tokens, paced by the engine model; with ``stream_options``
``include_usage`` a last chunk carries the usage, and ``continuous_usage_stats`` puts the usage so far
on every chunk, as vLLM does. A client that goes away mid-stream is noticed at the next write, and its
sequence leaves the engine there, as vLLM aborts the request of a closed connection.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from service.standin.text import count_tokens, token_pieces


def _event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


async def stream_chat(
    request: web.Request,
    body: dict[str, Any],
    sample: tuple[str, str],
    prompt_tokens: int,
    standin: Any,
) -> web.StreamResponse:
    """Write ``sample`` (text, finish reason) as a stream of chunks; returns once it is written or the
    client has gone. ``standin``: the ``Standin`` app, for its config and engine."""
    text, finish_reason = sample
    config, engine = standin.config, standin.engine
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage"))
    continuous = include_usage and bool(options.get("continuous_usage_stats"))
    pieces = token_pieces(text)
    tail = text[len("".join(pieces)) :]  # trailing whitespace after the last token
    created, chunk_id = int(time.time()), f"chatcmpl-{id(request):x}"
    envelope = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": config.model}

    def chunk(delta: dict[str, Any], finish: str | None, tokens: int) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        payload: dict[str, Any] = {**envelope, "choices": [choice]}
        if continuous:
            payload["usage"] = _usage(prompt_tokens, tokens)
        return _event(payload)

    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        await response.write(chunk({"role": "assistant", "content": ""}, None, 0))
        sent = 0
        async for done in engine.stream(len(pieces), config.stream_interval):
            last = done == len(pieces)
            content = "".join(pieces[sent:done]) + (tail if last else "")
            await response.write(chunk({"content": content}, finish_reason if last else None, done))
            sent = done
        if not pieces:
            await response.write(chunk({"content": tail}, finish_reason, 0))
        if include_usage:
            usage = _usage(prompt_tokens, count_tokens(text))
            await response.write(_event({**envelope, "choices": [], "usage": usage}))
        await response.write(_event("[DONE]"))
        await response.write_eof()
    except ConnectionResetError:  # the client closed the stream: its sequence has left the engine
        pass
    return response


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }

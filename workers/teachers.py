"""One front for every kind of teacher, so a task asks for completions without knowing which it has."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workers.teacher import ChatResult, TeacherClient, TeacherEndpoint
from workers.vllm_engine import EngineSpec, VllmEngines

if TYPE_CHECKING:
    from workers.early_abort import StreamWatch

TeacherTarget = TeacherEndpoint | EngineSpec


def target_from_teacher(teacher: dict[str, Any], api_key: str | None) -> TeacherTarget:
    """A job's ``teacher`` settings as the worker acts on them."""
    if teacher.get("kind") == "vllm-engine":
        return EngineSpec.from_teacher(teacher)
    return TeacherEndpoint(
        base_urls=tuple(teacher["base_url"]),
        model=teacher["model"],
        api_key=api_key,
        timeout_s=teacher.get("timeout_s", 600.0),
    )


class Teachers:
    """An OpenAI-compatible server (over the worker's one HTTP session) or an in-process vLLM engine."""

    def __init__(self, http: TeacherClient, engines: VllmEngines | None = None) -> None:
        self.http = http
        self.engines = engines or VllmEngines()

    async def chat(
        self,
        target: TeacherTarget,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        n: int,
        top_logprobs: int | None = None,
    ) -> ChatResult:
        """``n`` completions; with ``top_logprobs``, each choice carries its soft labels."""
        if isinstance(target, EngineSpec):
            return await self.engines.chat(target, messages, sampling, n, top_logprobs)
        return await self.http.chat(target, messages, sampling, n, top_logprobs)

    async def stream(
        self,
        target: TeacherTarget,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        watch: StreamWatch,
    ) -> ChatResult:
        """One completion, streamed past ``watch``, which may end it early (``workers/early_abort.py``)."""
        if isinstance(target, EngineSpec):
            return await self.engines.stream(target, messages, sampling, watch)
        return await self.http.stream(target, messages, sampling, watch)

    async def reachable(self, target: TeacherTarget) -> bool:
        if isinstance(target, EngineSpec):
            return await self.engines.reachable(target)
        return await self.http.reachable(target)

    def close(self) -> None:
        self.engines.close()

"""Every kind of teacher behind one interface, for the conformance suite and the real-vLLM jobs.

Kinds: the stand-in teacher over HTTP (always run), a real vLLM OpenAI server over HTTP and vLLM's
in-process engine (both marked ``vllm``). The ``vllm`` ones need vLLM and the SmolLM2 folder: the
real-vLLM tier runs them in ``.venv-vllm`` (``scripts/test``); elsewhere they skip, or fail where
``TRACEMILL_REQUIRE_VLLM=1``. Tests marked ``kills_teacher`` run after all others, since they end it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest

from service.launch.procs import free_port, stop
from service.launch.smollm2 import SERVED_NAME, model_dir
from service.launch.vllm_server import LOCAL_ENGINE_OPTIONS, start_vllm_server, vllm_installed
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from workers.teacher import ChatResult, TeacherClient, TeacherEndpoint
from workers.teachers import Teachers, TeacherTarget
from workers.vllm_engine import EngineSpec

T = TypeVar("T")
CALL_TIMEOUT_S = 600.0
ENGINE_PROCESS_NAME = "VLLM::EngineCor"  # /proc/PID/comm keeps 15 characters of "VLLM::EngineCore"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("kills_teacher") is not None)


class LoopThread:
    """One event loop in a thread for the whole session: an in-process engine stays bound to the loop
    that first used it, so every test's calls go through this one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(CALL_TIMEOUT_S)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass
class TeacherUnderTest:
    kind: str
    target: TeacherTarget
    teachers: Teachers
    loop: LoopThread
    kill: Callable[[], None]
    http_base: str | None  # None for the in-process engine, which has no HTTP to fault

    def chat(
        self,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        n: int,
        top_logprobs: int | None = None,
    ) -> ChatResult:
        return self.loop.run(self.teachers.chat(self.target, messages, sampling, n, top_logprobs))

    def chat_via(self, target: TeacherTarget, messages: list[dict[str, str]], n: int) -> ChatResult:
        return self.loop.run(self.teachers.chat(target, messages, {"seed": 1, "max_tokens": 16}, n))

    def reachable(self) -> bool:
        return self.loop.run(self.teachers.reachable(self.target))


def require_vllm() -> None:
    if vllm_installed():
        return
    message = "vLLM is not installed here: the real-vLLM tier runs in .venv-vllm (scripts/test)"
    if os.environ.get("TRACEMILL_REQUIRE_VLLM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def kill_engine_cores(parent: int) -> int:
    """SIGKILL the vLLM engine-core processes under ``parent``; returns how many were found."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and comm.startswith(ENGINE_PROCESS_NAME):
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
    return killed


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def teachers(loop_thread: LoopThread) -> Iterator[Teachers]:
    async def make() -> Teachers:
        return Teachers(TeacherClient(aiohttp.ClientSession()))

    made = loop_thread.run(make())
    yield made
    made.close()
    loop_thread.run(made.http.session.close())


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    require_vllm()
    return model_dir()


@pytest.fixture(scope="session")
def vllm_server(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real vLLM OpenAI server on loopback: its /v1 URL and its process id."""
    port = free_port()
    process = start_vllm_server(smollm2_dir, port, tmp_path_factory.mktemp("vllm") / "server.log")
    yield f"http://127.0.0.1:{port}/v1", process.pid
    stop([process], timeout_s=60)


@pytest.fixture(
    scope="session",
    params=[
        "standin",
        pytest.param("vllm-server", marks=pytest.mark.vllm),
        pytest.param("vllm-engine", marks=pytest.mark.vllm),
    ],
)
def teacher(
    request: pytest.FixtureRequest,
    loop_thread: LoopThread,
    teachers: Teachers,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TeacherUnderTest]:
    kind: str = request.param
    if kind == "standin":
        url, process = start_standin(tmp_path_factory.mktemp("conformance"))

        def kill_standin() -> None:
            httpx.post(url.removesuffix("/v1") + "/tracemill/engine", json={"alive": False})

        yield TeacherUnderTest(
            kind, TeacherEndpoint((url,), DEFAULT_MODEL), teachers, loop_thread, kill_standin, url
        )
        stop([process])
    elif kind == "vllm-server":
        url, pid = request.getfixturevalue("vllm_server")
        yield TeacherUnderTest(
            kind,
            TeacherEndpoint((url,), SERVED_NAME),
            teachers,
            loop_thread,
            lambda: _kill(pid),
            url,
        )
    else:
        model: Path = request.getfixturevalue("smollm2_dir")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU default is sized for servers
        spec = EngineSpec(model=str(model), options_json=json.dumps(LOCAL_ENGINE_OPTIONS, sort_keys=True))
        yield TeacherUnderTest(kind, spec, teachers, loop_thread, lambda: _kill(os.getpid()), None)


def _kill(parent: int) -> None:
    assert kill_engine_cores(parent) >= 1, "no vLLM engine-core process found to kill"

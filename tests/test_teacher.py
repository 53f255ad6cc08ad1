"""The teacher client retries what may pass later and gives up clearly on what cannot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from service.errors import TeacherRejected, TeacherUnavailable
from service.launch.procs import stop
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from workers.teacher import ChatResult, TeacherClient, TeacherEndpoint

MESSAGES = [{"role": "user", "content": "Compute 6 * 7."}]


def _chat(endpoint: TeacherEndpoint, n: int = 2) -> ChatResult:
    async def go() -> ChatResult:
        async with aiohttp.ClientSession() as session:
            return await TeacherClient(session).chat(endpoint, MESSAGES, {"seed": 1, "max_tokens": 300}, n)

    return asyncio.run(go())


def test_n_choices_with_usage(standin_teacher: str) -> None:
    result = _chat(TeacherEndpoint((standin_teacher,), DEFAULT_MODEL), n=3)
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert result.completion_tokens > 0 and result.prompt_tokens > 0


def test_a_rejected_request_is_not_retried(standin_teacher: str) -> None:
    with pytest.raises(TeacherRejected, match="404"):
        _chat(TeacherEndpoint((standin_teacher,), "no-such-model"))


def test_retryable_faults_are_retried_until_success(tmp_path: Path) -> None:
    url, process = start_standin(tmp_path, "--error-429-rate", "0.3", "--error-503-rate", "0.3")
    try:
        results = [_chat(TeacherEndpoint((url,), DEFAULT_MODEL, max_retries=12)) for _ in range(5)]
        assert all(len(r.choices) == 2 for r in results)
    finally:
        stop([process])


def test_a_teacher_that_stays_down_is_unavailable(tmp_path: Path) -> None:
    url, process = start_standin(tmp_path, "--error-503-rate", "1")
    try:
        with pytest.raises(TeacherUnavailable, match="503"):
            _chat(TeacherEndpoint((url,), DEFAULT_MODEL, max_retries=1))
    finally:
        stop([process])


def test_a_hung_request_times_out(tmp_path: Path) -> None:
    url, process = start_standin(tmp_path, "--hang-rate", "1")
    try:
        with pytest.raises(TeacherUnavailable, match="Timeout"):
            _chat(TeacherEndpoint((url,), DEFAULT_MODEL, timeout_s=0.5, max_retries=1))
    finally:
        stop([process])


def test_nobody_listening_is_unavailable() -> None:
    with pytest.raises(TeacherUnavailable, match=r"127\.0\.0\.1:9"):
        _chat(TeacherEndpoint(("http://127.0.0.1:9/v1",), DEFAULT_MODEL, max_retries=0))


def test_a_dead_server_is_skipped_for_a_live_one(standin_teacher: str) -> None:
    dead = "http://127.0.0.1:9/v1"

    async def go() -> list[ChatResult]:
        async with aiohttp.ClientSession() as session:
            client = TeacherClient(session)
            endpoint = TeacherEndpoint((dead, standin_teacher), DEFAULT_MODEL, max_retries=2)
            results = [
                await client.chat(endpoint, MESSAGES, {"seed": 1, "max_tokens": 300}, 1) for _ in range(6)
            ]
            assert not client.health.any_healthy((dead,))  # benched after its first failure
            return results

    start = time.monotonic()
    assert all(len(r.choices) == 1 for r in asyncio.run(go()))
    assert time.monotonic() - start < 3  # failed over at once, no backoff sleeps


def test_reachable(standin_teacher: str) -> None:
    async def go(urls: tuple[str, ...]) -> bool:
        async with aiohttp.ClientSession() as session:
            return await TeacherClient(session).reachable(TeacherEndpoint(urls, DEFAULT_MODEL))

    assert asyncio.run(go(("http://127.0.0.1:9/v1", standin_teacher)))
    assert not asyncio.run(go(("http://127.0.0.1:9/v1",)))

"""The stand-in teacher speaks vLLM's protocol and is deterministic for a seed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.launch.procs import stop
from service.standin.server import DEFAULT_MODEL
from service.standin.text import compose, count_tokens, solve
from tests.conftest import start_standin
from verifiers.base import Candidate
from verifiers.format import FormatOptions, FormatVerifier

PROMPT = [{"role": "user", "content": "Compute (17 + 25) * 3."}]


def _chat(url: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{url}/chat/completions", json={"model": DEFAULT_MODEL, "messages": PROMPT, **body}, timeout=30
    )


def test_models_and_health(standin_teacher: str) -> None:
    assert httpx.get(f"{standin_teacher}/models").json()["data"][0]["id"] == DEFAULT_MODEL
    assert httpx.get(standin_teacher.removesuffix("/v1") + "/health").status_code == 200


def test_n_seed_and_usage(standin_teacher: str) -> None:
    first = _chat(standin_teacher, n=6, seed=7, max_tokens=4096).json()
    again = _chat(standin_teacher, n=6, seed=7, max_tokens=4096).json()
    other = _chat(standin_teacher, n=6, seed=8, max_tokens=4096).json()
    texts = [c["message"]["content"] for c in first["choices"]]
    assert len(texts) == 6 and [c["index"] for c in first["choices"]] == list(range(6))
    assert texts == [c["message"]["content"] for c in again["choices"]]
    assert texts != [c["message"]["content"] for c in other["choices"]]
    assert first["usage"]["completion_tokens"] == sum(count_tokens(t) for t in texts)
    assert first["usage"]["prompt_tokens"] == count_tokens(PROMPT[0]["content"])
    assert (
        first["usage"]["total_tokens"]
        == first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    )


def test_max_tokens_truncates_with_finish_reason_length(standin_teacher: str) -> None:
    body = _chat(standin_teacher, n=2, seed=1, max_tokens=5).json()
    assert all(c["finish_reason"] == "length" for c in body["choices"])
    assert all(count_tokens(c["message"]["content"]) == 5 for c in body["choices"])
    assert body["usage"]["completion_tokens"] == 10


def test_completions_endpoint(standin_teacher: str) -> None:
    body = httpx.post(
        f"{standin_teacher}/completions",
        json={"model": DEFAULT_MODEL, "prompt": "Compute 2 + 2.", "n": 2, "seed": 3, "max_tokens": 500},
    ).json()
    assert body["object"] == "text_completion" and len(body["choices"]) == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "nope", "messages": PROMPT}, 404),
        ({"model": DEFAULT_MODEL, "messages": PROMPT, "n": 0}, 400),
        ({"model": DEFAULT_MODEL, "messages": []}, 400),
        ({"model": DEFAULT_MODEL, "messages": PROMPT, "max_tokens": -1}, 400),
    ],
)
def test_errors_in_openai_shape(standin_teacher: str, body: dict[str, object], status: int) -> None:
    response = httpx.post(f"{standin_teacher}/chat/completions", json=body)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_injected_faults(tmp_path: Path) -> None:
    url, process = start_standin(tmp_path, "--error-429-rate", "0.5", "--error-503-rate", "0.5")
    try:
        statuses = {_chat(url, n=1).status_code for _ in range(20)}
        assert statuses == {429, 503}
    finally:
        stop([process])


def test_outcomes_cover_every_kind_and_the_right_share() -> None:
    prompt = "Compute (17 + 25) * 3."
    assert solve(prompt)[1] == 126  # type: ignore[index]
    texts = [compose(prompt, seed, 0, correct_share=0.6) for seed in range(400)]
    right = sum(
        "\\boxed{126}" in t
        and t.count("<think>") == 1
        and "</think>" in t
        and "我们" not in t
        and len(t) < 1000
        for t in texts
    )
    assert 0.5 < right / len(texts) < 0.7
    fmt = FormatVerifier(FormatOptions())
    reasons = {fmt.verify(Candidate(t, None, None)).reason for t in texts}
    assert {None, "format:unclosed_think", "format:missing_think", "format:repeated_think"} <= reasons
    assert any("我们" in t for t in texts)  # language-mixed
    assert any(len(t) > 3000 for t in texts)  # over-long
    assert any("\\boxed{" in t and "\\boxed{126}" not in t for t in texts)  # wrong


def test_a_difficulty_profile_solves_only_the_small_sums(tmp_path: Path) -> None:
    """A weak student's profile: right as often as ever on small numbers, never once a number is large."""
    url, process = start_standin(tmp_path, "--correct-share", "1", "--hard-above", "20")
    try:

        def answers(prompt: str) -> list[str]:
            reply = _chat(url, messages=[{"role": "user", "content": prompt}], n=8, seed=3, max_tokens=400)
            return [choice["message"]["content"] for choice in reply.json()["choices"]]

        assert all("\\boxed{12}" in text for text in answers("Compute 5 + 7."))
        assert not any("\\boxed{48}" in text for text in answers("Compute 21 + 27."))
    finally:
        stop([process])

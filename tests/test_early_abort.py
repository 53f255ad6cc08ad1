"""Early abort: partial checks never reject what the full check accepts (on the stand-in's traces and
each verifier's held-in cases); the repetition verifier; streams from the stand-in that end early,
free their sequence and count their tokens exactly; and jobs with and without ``abort_early`` that
keep the very same accepted samples."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from sqlalchemy import Engine, select

from service.database import jobs
from service.database.models import Sample, Task, Verdict
from service.launch.procs import stop
from service.reasoning import split_text
from service.schemas import JobIn
from service.standin.server import DEFAULT_MODEL, Standin, StandinConfig
from service.standin.text import token_pieces
from tests.cases.langmix_cases import CASES as LANGMIX_CASES
from tests.conftest import start_standin
from tests.test_format import CASES as FORMAT_CASES
from verifiers.base import Candidate
from verifiers.format import FormatOptions, FormatVerifier
from verifiers.language import LanguageMixVerifier, LanguageOptions
from verifiers.length import LengthOptions, LengthVerifier
from verifiers.repetition import RepetitionOptions, RepetitionVerifier
from verifiers.runner import VerifierRunner
from workers.early_abort import PartialChecks
from workers.loop import Worker
from workers.teacher import TeacherClient, TeacherEndpoint

PROMPT = "Compute 17 * 3 + 4."
VERIFIERS: list[Any] = [
    FormatVerifier(FormatOptions()),
    LanguageMixVerifier(LanguageOptions()),
    LengthVerifier(LengthOptions(max_tokens=300, max_chars=1500, max_think_chars=1200)),
    RepetitionVerifier(RepetitionOptions()),
    RepetitionVerifier(RepetitionOptions(ngram=5, max_repeats=3, window=60, line_repeats=3, line_window=10)),
]


def _candidate(text: str, tokens: int, prompt: str, finish: str | None) -> Candidate:
    split = split_text(text)
    messages = ({"role": "user", "content": prompt},)
    return Candidate(text, split.think, split.answer, finish, tokens, messages)


def _early_verdicts(verifier: Any, text: str, prompt: str, every: int = 7) -> list[tuple[int, str]]:
    """Each prefix (every few tokens) that the partial check rejects, with its reason."""
    pieces, found, seen = token_pieces(text), [], 0
    for end in range(every, len(pieces) + 1, every):
        prefix = "".join(pieces[:end])
        verdict = verifier.verify_partial(_candidate(prefix, end, prompt, None), seen)
        seen = len(prefix)
        if verdict is not None:
            assert not verdict.accepted
            found.append((end, verdict.reason))
    return found


def _standin_traces() -> list[tuple[str, str]]:
    config = StandinConfig(loop_share=0.2, drift_share=0.2, long_share=0.1, length_median=250)
    standin = Standin(config)
    prompts = [PROMPT, "Compute (2 + 5) * 11 - 3.", "计算 12 * 12。", "Say hello."]
    return [(p, standin._sample(p, seed, 700)[0]) for p in prompts for seed in range(40)]


CASES = [
    *_standin_traces(),
    *((prompt, text) for prompt, text, _ in LANGMIX_CASES),
    *((PROMPT, text) for text, _, _ in FORMAT_CASES),
]


@pytest.mark.parametrize("verifier", VERIFIERS, ids=lambda v: type(v).__name__)
def test_an_early_rejection_is_one_the_full_check_makes(verifier: Any) -> None:
    aborted = 0
    for prompt, text in CASES:
        early = _early_verdicts(verifier, text, prompt)
        if not early:
            continue
        aborted += 1
        full = verifier.verify(_candidate(text, len(token_pieces(text)), prompt, "stop"))
        assert not full.accepted, (text[:200], early[0])
        if not isinstance(verifier, FormatVerifier | LengthVerifier):
            assert full.reason == early[0][1]
        # format and length rank their faults: one they rank first may still come after the abort.
        assert full.reason.partition(":")[0] == early[0][1].partition(":")[0]
    assert aborted >= 5  # the cases have something for every check to stop


def test_the_repetition_verifier_finds_loops_and_spares_honest_repeats() -> None:
    check = RepetitionVerifier(RepetitionOptions())
    loop = "Wait, I should recompute the sum of these terms again from the very first one.\n\n" * 5

    def verdict(text: str) -> Any:
        return check.verify(_candidate(text, len(token_pieces(text)), PROMPT, "stop"))

    found = verdict("<think>\nLet me start.\n" + loop)
    assert found.reason == "repetition:loop" and found.details["kind"] == "ngram"
    lines = verdict("<think>\n" + "".join(f"Try {k * k} + {k}.\nWait, let me check.\n" for k in range(6)))
    assert lines.reason == "repetition:loop" and lines.details["kind"] == "line"
    honest = "\n".join(
        f"Step {k}: 17 * 3 = 51, and 51 + {k} = {51 + k}. Wait, let me check." for k in range(40)
    )
    assert verdict(f"<think>\n{honest}\n</think>\n\nThe answer is 55.").accepted
    spread = "\n\n".join(
        ["Wait, I should recompute the sum of these terms again from the very first one."]
        + [f"Line {k} of other work, about {k * 3} units." for k in range(300)] * 4
    )
    assert verdict(spread).accepted  # the same sentence 4 times, but never 4 times within a window


async def _stream(url: str, seed: int, checks: PartialChecks | None, max_tokens: int = 3000) -> Any:
    async with aiohttp.ClientSession() as session:
        client = TeacherClient(session)
        endpoint = TeacherEndpoint((url,), DEFAULT_MODEL)
        messages = [{"role": "user", "content": PROMPT}]
        sampling = {"seed": seed, "max_tokens": max_tokens}
        whole = await client.chat(endpoint, messages, dict(sampling, seed=seed - 2), n=3)
        assert checks is not None
        watch = checks.watch(Candidate("", None, None, messages=tuple(messages)))
        streamed = await client.stream(endpoint, messages, sampling, watch)
        return whole, streamed


def test_a_stream_ends_at_its_rejection_frees_its_sequence_and_counts_its_tokens(tmp_path: Path) -> None:
    url, process = start_standin(
        tmp_path,
        "--loop-share",
        "0.5",
        "--drift-share",
        "0.5",
        "--token-delay",
        "0.002",
        "--length-median",
        "300",
    )
    stats_url = url.removesuffix("/v1") + "/tracemill/stats"
    try:
        everything = PartialChecks.of([{"name": "format"}, {"name": "langmix"}, {"name": "repetition"}])
        nothing = PartialChecks.of([{"name": "format"}])
        aborted = []
        for seed in range(2, 8):
            whole, streamed = asyncio.run(_stream(url, seed, everything))
            choice, full = streamed.choices[0], whole.choices[2]  # seed - 2 + index 2 == seed
            if choice.aborted is None:
                continue
            aborted.append(choice)
            assert (
                choice.finish_reason == "abort"
                and choice.aborted.details["aborted_at_token"] == choice.tokens
            )
            assert full.content.startswith(choice.content)  # the same sample, cut short
            assert choice.tokens == len(token_pieces(choice.content)) < len(token_pieces(full.content))
            deadline = time.monotonic() + 10
            while httpx.get(stats_url).json()["running"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert httpx.get(stats_url).json()["running"] == 0  # its sequence left the engine
        assert {c.aborted.reason for c in aborted} == {"repetition:loop", "langmix:mixed"}
        # Not aborted: the whole sample, its tokens exact, the same as choice 2 of one request of 3.
        whole, streamed = asyncio.run(_stream(url, 3, nothing, max_tokens=600))
        choice = streamed.choices[0]
        assert (choice.content, choice.finish_reason) == (
            whole.choices[2].content,
            whole.choices[2].finish_reason,
        )
        assert choice.tokens == streamed.completion_tokens == len(token_pieces(choice.content))
        assert streamed.prompt_tokens == whole.prompt_tokens
    finally:
        stop([process])


def _job(url: str, abort_early: bool) -> JobIn:
    return JobIn.model_validate(
        {
            "teacher": {"base_url": url, "model": DEFAULT_MODEL},
            "n": 4,
            "sampling": {"seed": 11, "max_tokens": 2000},
            "abort_early": abort_early,
            "verifiers": [
                {"name": "format"},
                {"name": "math"},
                {"name": "langmix"},
                {"name": "length", "options": {"max_tokens": 1500}},
                {"name": "repetition"},
            ],
            "prompts": [
                {"id": f"p{i}", "prompt": f"Compute {i} * 7 + 3.", "reference": str(i * 7 + 3)}
                for i in range(10)
            ],
        }
    )


def _samples(engine: Engine, job_id: str) -> list[Any]:
    """The job's samples: prompt, index, text, verdict, finish reason, tokens, the verdicts' details."""
    query = (
        select(
            Task.prompt_id,
            Sample.sample_index,
            Sample.completion,
            Sample.accepted,
            Sample.reason,
            Sample.finish_reason,
            Sample.completion_tokens,
            Sample.id,
        )
        .join(Task, Task.id == Sample.task_id)
        .where(Sample.job_id == job_id)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
        details = {r.sample_id: r.details for r in conn.execute(select(Verdict.sample_id, Verdict.details))}
    return [(*row[:7], details.get(row.id)) for row in rows]


def test_a_job_with_early_abort_keeps_the_same_samples_for_fewer_tokens(
    engine: Engine, tmp_path: Path
) -> None:
    url, process = start_standin(
        tmp_path,
        "--loop-share",
        "0.15",
        "--drift-share",
        "0.1",
        "--long-share",
        "0.1",
        "--length-median",
        "200",
    )
    runner = VerifierRunner(processes=1)
    try:
        ids = {flag: jobs.create_job(engine, _job(url, flag)).id for flag in (False, True)}
        asyncio.run(Worker(engine, runner, 30, 2, 8, exit_when_idle=True).run())
    finally:
        runner.close()
        stop([process])
    plain, early = (_samples(engine, ids[flag]) for flag in (False, True))
    assert len(plain) == len(early) == 40
    kept = {s[:3] for s in plain if s[3]}
    assert kept and kept == {s[:3] for s in early if s[3]}
    cut = [s for s in early if s[5] == "abort"]
    assert cut and {s[4] for s in cut} <= {"repetition:loop", "langmix:mixed", "length:too_long"}
    assert all(s[7]["aborted_at_token"] == s[6] for s in cut)
    assert sum(s[6] for s in early) < 0.8 * sum(s[6] for s in plain)

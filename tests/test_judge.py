"""The judge verifier: its question and how its reply is read, then jobs whose samples a judge model
(the stand-in's judge mode, over real HTTP) decides: alone, as math's fallback, through 429s, 503s and
hangs, and down until it returns. A stand-in judge is exact, so its verdicts must equal math's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from service.api import browse
from service.database import jobs
from service.launch.procs import free_port, stop
from service.responses import JobOut, SampleOut
from service.schemas import JobIn
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from tests.fault_proxy import FaultProxy
from tests.outage import pause_then_return
from verifiers.base import Candidate
from verifiers.judge import JudgeOptions, JudgeVerifier, fill, read_json, read_tags
from verifiers.runner import VerifierRunner
from workers.loop import Worker

PROMPTS = 10


@pytest.fixture(scope="module")
def runner() -> Iterator[VerifierRunner]:
    runner = VerifierRunner(processes=1)
    yield runner
    runner.close()


def _judge(url: str, **options: Any) -> dict[str, Any]:
    return {"judge": {"base_url": url, "model": DEFAULT_MODEL, "timeout_s": 5}, **options}


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("It matches.\n\n[[YES]]", True),
        ("It does not.\n[[no]]", False),
        ("First [[YES]] then, on reflection, [[NO]]", False),  # the last one counts
        ("<think>maybe [[YES]]</think>\nNo: [[NO]]", False),  # a reasoning judge's own think is skipped
        ("I am not sure.", None),
        ("[[ YES ]]", True),
    ],
)
def test_tag_verdicts(reply: str, verdict: bool | None) -> None:
    assert read_tags(reply) == verdict


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ('{"reasoning": "same value", "correct": true}', True),
        ('Here: {"reasoning": "off by one", "correct": false}', False),
        ('```json\n{"verdict": "yes"}\n```', True),
        ('{"correct": "maybe"}', None),
        ("not json at all {", None),
    ],
)
def test_json_verdicts(reply: str, verdict: bool | None) -> None:
    parsed = read_json(reply)
    assert (parsed[0] if parsed else None) == verdict


def test_the_question_shows_the_answer_not_the_trace_by_default() -> None:
    candidate = Candidate(
        completion="<think>long reasoning</think>\nThe answer is 4.",
        think="long reasoning",
        answer="The answer is 4.",
        messages=({"role": "user", "content": "What is 2 + 2?"},),
        reference="4",
    )
    options = JudgeOptions.model_validate(_judge("http://127.0.0.1:9/v1"))
    (question,) = JudgeVerifier(options).question(candidate)  # type: ignore[misc]
    text = question["content"]
    assert "What is 2 + 2?" in text and "<reference>\n4\n</reference>" in text
    assert "The answer is 4." in text and "long reasoning" not in text and "[[YES]]" in text
    trace = JudgeVerifier(JudgeOptions.model_validate(_judge("http://127.0.0.1:9/v1", show="trace")))
    assert "long reasoning" in trace.question(candidate)[0]["content"]  # type: ignore[index]
    empty = Candidate(completion="<think>x</think>", think="x", answer=None)
    assert JudgeVerifier(options).question(empty).reason == "judge:no_answer"  # type: ignore[union-attr]


def test_a_template_may_leave_out_the_instructions_and_show_braces() -> None:
    text = fill('Grade {answer} against {reference}; reply {"ok": 1}', {"answer": "7", "reference": "7"})
    assert text.startswith('Grade 7 against 7; reply {"ok": 1}') and text.endswith("\n\n")
    # Text that looks like a placeholder, in the prompt or the model's answer, stays text.
    shown = fill("{prompt} | {answer}", {"prompt": "say {answer}", "answer": "{reference}", "reference": "9"})
    assert shown.startswith("say {answer} | {reference}")
    with pytest.raises(ValueError, match="answer"):
        JudgeOptions.model_validate(_judge("http://127.0.0.1:9/v1", template="no placeholder"))


def _prompts(with_reference: bool = True) -> list[dict[str, Any]]:
    return [
        {"id": f"p{i}", "prompt": f"Compute {i} * 3 + 1."}
        | ({"reference": str(i * 3 + 1)} if with_reference or i % 2 else {})
        for i in range(PROMPTS)
    ]


def _job(engine: Engine, teacher: str, verifiers: list[dict[str, Any]], **body: Any) -> str:
    spec = {
        "teacher": {"base_url": teacher, "model": DEFAULT_MODEL},
        "n": 3,
        "sampling": {"seed": 11, "max_tokens": 512},
        "verifiers": verifiers,
        "prompts": body.pop("prompts", _prompts()),
        **body,
    }
    return jobs.create_job(engine, JobIn.model_validate(spec)).id


def _worker(engine: Engine, runner: VerifierRunner) -> Worker:
    return Worker(engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=8, exit_when_idle=True)


def _run(
    engine: Engine, runner: VerifierRunner, teacher: str, verifiers: list[dict[str, Any]], **body: Any
) -> str:
    job_id = _job(engine, teacher, verifiers, **body)
    asyncio.run(_worker(engine, runner).run())
    return job_id


def _samples(engine: Engine, job_id: str) -> list[SampleOut]:
    return browse.list_samples(engine, job_id, limit=1000).items


def _verdict(sample: SampleOut, name: str) -> Any:
    return next((v for v in sample.verdicts if v.verifier == name), None)


@pytest.mark.parametrize("form", ["tags", "json"])
def test_the_judge_accepts_and_rejects_as_it_says_and_its_tokens_count(
    engine: Engine, runner: VerifierRunner, standin_teacher: str, form: str
) -> None:
    job_id = _run(
        engine,
        runner,
        standin_teacher,
        [{"name": "math"}, {"name": "judge", "options": _judge(standin_teacher, verdict=form)}],
    )
    samples = _samples(engine, job_id)
    assert len(samples) == PROMPTS * 3
    judged = [(_verdict(s, "math"), _verdict(s, "judge")) for s in samples]
    assert all(j.accepted == m.accepted for m, j in judged), [(m.reason, j.reason) for m, j in judged]
    assert {j.reason for _, j in judged} <= {None, "judge:incorrect", "judge:no_answer"}
    assert any(j.accepted for _, j in judged) and any(not j.accepted for _, j in judged)
    assert all(
        j.details["usage"]["completion_tokens"] > 0 for _, j in judged if j.reason != "judge:no_answer"
    )
    job = jobs.get_job(engine, job_id)
    (stats,) = [v for v in job.verifiers if v.name == "judge"]
    assert stats.tokens > 0 and stats.seconds > 0
    roles = {u.role: u for u in job.usage}
    assert roles["judge"].model == DEFAULT_MODEL and roles["judge"].completion_tokens > 0
    assert roles["judge"].prompt_tokens + roles["judge"].completion_tokens == stats.tokens
    assert roles["teacher"].completion_tokens == job.tokens["completion"]


def test_a_fallback_judge_decides_only_where_math_cannot(
    engine: Engine, runner: VerifierRunner, standin_teacher: str
) -> None:
    fallback = ["math:no_reference", "math:unparseable_reference"]
    job_id = _run(
        engine,
        runner,
        standin_teacher,
        [{"name": "math"}, {"name": "judge", "options": _judge(standin_teacher), "fallback_for": fallback}],
        prompts=_prompts(with_reference=False),
    )
    for sample in _samples(engine, job_id):
        math, judge = _verdict(sample, "math"), _verdict(sample, "judge")
        if sample.reference is None:
            assert math.reason == "math:no_reference" and math.details["superseded_by"] == "judge"
            assert judge is not None and sample.accepted == judge.accepted
            # Without a reference the stand-in judge works the arithmetic out: right answers pass (an
            # unclosed think block has no answer to judge).
            assert judge.accepted == (
                f"boxed{{{int(sample.prompt_id[1:]) * 3 + 1}}}" in (sample.answer or "")
            )
        else:
            assert judge is None and sample.accepted == math.accepted
    assert any(s.accepted and s.reference is None for s in _samples(engine, job_id))


def test_an_unreadable_verdict_is_a_reason_not_a_crash(
    engine: Engine, runner: VerifierRunner, standin_teacher: str
) -> None:
    # A template asking for JSON while the verdict is read as tags: the judge's replies are unreadable.
    template = 'Is {answer} right for {prompt} given {reference}? Answer {"correct": true or false}.'
    options = _judge(standin_teacher, template=template)
    job_id = _run(engine, runner, standin_teacher, [{"name": "judge", "options": options}])
    reasons = {s.reason for s in _samples(engine, job_id)}
    assert "judge:unparseable" in reasons and reasons <= {"judge:unparseable", "judge:no_answer"}


def test_429s_503s_and_hangs_of_the_judge_reject_nothing(
    engine: Engine, runner: VerifierRunner, standin_teacher: str, tmp_path: Path
) -> None:
    hanging, process = start_standin(tmp_path, "--hang-rate", "0.2", "--fault-seed", "3")
    proxy = FaultProxy(hanging, [429, 503, 503, 429, 503])

    async def scenario() -> str:
        judge_url = await proxy.start()
        options = {"judge": {"base_url": judge_url, "model": DEFAULT_MODEL, "timeout_s": 1}}
        job_id = _job(engine, standin_teacher, [{"name": "math"}, {"name": "judge", "options": options}])
        try:
            await _worker(engine, runner).run()
        finally:
            await proxy.close()
        return job_id

    try:
        job_id = asyncio.run(scenario())
    finally:
        stop([process])
    job = jobs.get_job(engine, job_id)
    assert (job.tasks.done, job.tasks.failed, job.samples.total) == (PROMPTS, 0, PROMPTS * 3)
    assert proxy.faulted == 5
    for sample in _samples(engine, job_id):
        assert _verdict(sample, "judge").accepted == _verdict(sample, "math").accepted


def test_a_down_judge_pauses_the_job_until_it_answers(
    engine: Engine, runner: VerifierRunner, standin_teacher: str, tmp_path: Path
) -> None:
    port = free_port()
    options = {"judge": {"base_url": f"http://127.0.0.1:{port}/v1", "model": DEFAULT_MODEL, "timeout_s": 2}}
    body = {
        "teacher": {"base_url": standin_teacher, "model": DEFAULT_MODEL},
        "n": 2,
        "sampling": {"seed": 2},
        "verifiers": [{"name": "judge", "options": options}],
        "prompts": _prompts(),
    }
    job_id = jobs.create_job(engine, JobIn.model_validate(body)).id
    worker = Worker(engine, runner, lease_seconds=30, max_attempts=2, max_in_flight=4, paused_probe_s=0.3)

    def paused_for_the_judge(paused: JobOut) -> None:
        assert paused.status_reason and paused.status_reason.startswith("judge unreachable")
        assert paused.samples.total == 0

    pause_then_return(
        engine,
        worker,
        job_id,
        port=port,
        log=tmp_path / "judge.log",
        tasks=PROMPTS,
        on_pause=paused_for_the_judge,
    )
    job = jobs.get_job(engine, job_id)
    assert (job.tasks.done, job.tasks.failed, job.samples.total) == (PROMPTS, 0, PROMPTS * 2)
    assert "judge:unavailable" not in job.rejection_reasons


class _QuestionBug(JudgeVerifier):
    """A model verifier whose question() has a bug."""

    def question(self, candidate: Candidate) -> Any:
        raise KeyError("reference_text")


def test_a_question_that_raises_is_a_reason_not_a_failed_task(runner: VerifierRunner) -> None:
    import aiohttp

    from verifiers.runner import VerifierSpec
    from workers.teacher import TeacherClient, TeacherEndpoint
    from workers.teachers import Teachers
    from workers.verification import ModelCheck, Verification, VerifierPlan

    options = _judge("http://127.0.0.1:9/v1")  # never asked: the question fails first
    verifier = _QuestionBug(JudgeOptions.model_validate(options))
    check = ModelCheck(
        VerifierSpec("judge", options),
        verifier,
        TeacherEndpoint(("http://127.0.0.1:9/v1",), "m"),
        None,
        False,
        "",
    )
    plan = VerifierPlan(models=(check,), order=("judge",))

    async def verdicts() -> list[list[Any]]:
        async with aiohttp.ClientSession() as session:
            verification = Verification(runner, Teachers(TeacherClient(session)), max_in_flight=2)
            return await verification.each(plan, [Candidate("<think>r</think>4", "r", "4", reference="4")])

    ((verdict,),) = asyncio.run(verdicts())
    assert verdict.reason == "judge:error" and not verdict.accepted
    assert verdict.details["error"] == "KeyError: 'reference_text'"

"""Majority vote: hand-made groups (ties, all different, one answer in three spellings, thresholds),
then jobs without references through a real worker: with early stop, and with a worker process killed
between the rounds of one prompt, after which every group verdict is there exactly once and is the
vote over the prompt's committed samples."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from service.api import browse
from service.database import jobs
from service.export.mixing import export
from service.export.options import ExportOptions
from service.launch.procs import spawn, stop
from service.responses import SampleOut
from service.schemas import JobIn
from service.standin.server import DEFAULT_MODEL
from service.storage import shards
from service.storage.stores import ShardStore
from tests.conftest import start_standin
from verifiers.base import Candidate, Verdict
from verifiers.majority import MajorityOptions, MajorityVerifier
from verifiers.runner import VerifierRunner
from workers.loop import Worker


def _vote(answers: list[str | None], **options: Any) -> list[Verdict]:
    texts = ["I could not finish." if a is None else f"So \\boxed{{{a}}}." for a in answers]
    candidates = [Candidate(completion=f"<think>t</think>{t}", think="t", answer=t) for t in texts]
    return MajorityVerifier(MajorityOptions(**options)).verify_group(candidates)


def test_equivalent_forms_are_one_class_and_win() -> None:
    verdicts = _vote(["1/2", "0.5", "\\frac12", "3"])
    assert [v.accepted for v in verdicts] == [True, True, True, False]
    assert verdicts[3].reason == "majority:minority_answer"
    assert verdicts[0].details["answer"] == "1/2" and verdicts[0].details["share"] == 0.75
    assert verdicts[0].details["classes"] == [{"answer": "1/2", "votes": 3}, {"answer": "3", "votes": 1}]


def test_a_tie_and_all_different_answers_keep_nothing() -> None:
    tie = _vote(["2", "2", "5", "5"])
    assert not any(v.accepted for v in tie) and {v.reason for v in tie} == {"majority:no_majority"}
    assert "answer" not in tie[0].details
    different = _vote(["1", "2", "3", "4"])
    assert {v.reason for v in different} == {"majority:no_majority"}


def test_thresholds_and_samples_without_an_answer() -> None:
    # 2 of 5 answers is the largest class but under min_share 0.5; samples without an answer do not vote.
    assert {v.reason for v in _vote(["7", "7", "1", "2", "3"])} == {"majority:no_majority"}
    verdicts = _vote(["7", "7", None, "1"])
    assert [v.accepted for v in verdicts] == [True, True, False, False]
    assert verdicts[2].reason == "majority:no_answer" and verdicts[0].details["votes"] == 3
    assert not _vote(["7"])[0].accepted  # one vote is under min_votes 2
    assert _vote(["7"], min_votes=1)[0].accepted
    assert [v.accepted for v in _vote(["7", "7", "7", "1"], min_share=0.8)] == [False] * 4


@pytest.fixture(scope="module")
def runner() -> Any:
    runner = VerifierRunner(processes=1)
    yield runner
    runner.close()


def _spec(teacher: str, prompts: int, **body: Any) -> JobIn:
    return JobIn.model_validate(
        {
            "teacher": {"base_url": teacher, "model": DEFAULT_MODEL},
            "sampling": {"seed": 4, "max_tokens": 400},
            "verifiers": [{"name": "majority"}],
            "prompts": [{"id": f"p{i}", "prompt": f"Compute {i} * 7 - 2."} for i in range(prompts)],
            **body,
        }
    )


def _samples(engine: Engine, job_id: str) -> dict[str, list[SampleOut]]:
    by_prompt: dict[str, list[SampleOut]] = {}
    for sample in browse.list_samples(engine, job_id, limit=1000).items:
        by_prompt.setdefault(sample.prompt_id, []).append(sample)
    return by_prompt


def _check_votes(samples: dict[str, list[SampleOut]]) -> None:
    """Each sample holds one majority verdict, the vote over its prompt's committed samples."""
    for group in samples.values():
        group.sort(key=lambda s: s.sample_index)
        assert [s.sample_index for s in group] == list(range(len(group)))
        candidates = [Candidate(completion=s.completion, think=s.think, answer=s.answer) for s in group]
        expected = MajorityVerifier(MajorityOptions()).verify_group(candidates)
        for sample, verdict in zip(group, expected, strict=True):
            (stored,) = [v for v in sample.verdicts if v.verifier == "majority"]
            assert (stored.accepted, stored.reason) == (verdict.accepted, verdict.reason)
            assert sample.accepted == verdict.accepted


def test_a_job_keeps_each_prompts_majority_and_stops_early(
    engine: Engine, runner: VerifierRunner, standin_teacher: str, tmp_path: Path
) -> None:
    job_id = jobs.create_job(engine, _spec(standin_teacher, 12, n=8, stop_after_accepted=2)).id
    asyncio.run(Worker(engine, runner, 30, 2, 8, exit_when_idle=True).run())
    samples = _samples(engine, job_id)
    _check_votes(samples)
    assert len(samples) == 12
    for group in samples.values():
        accepted = [s for s in group if s.accepted]
        assert len(accepted) >= 2 or len(group) == 8  # enough agreeing answers, or every sample drawn
        if accepted:
            assert accepted[0].verdicts[0].details["answer"] in accepted[0].answer
    assert sum(len(g) for g in samples.values()) < 12 * 8  # early stop spared samples
    assert any(s.accepted for g in samples.values() for s in g)
    # The export carries each prompt's winning answer as its pseudo-reference.
    store = ShardStore(tmp_path / "shards")
    shards.flush_all(engine, store, shard_rows=1000)
    export(engine, store, ExportOptions(jobs=(job_id,), output=tmp_path / "out", keep_per_prompt=8))
    rows = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert {r["prompt_id"] for r in rows} == {p for p, g in samples.items() if any(s.accepted for s in g)}
    for row in rows:
        winner = next(s for s in samples[row["prompt_id"]] if s.accepted).verdicts[0].details["answer"]
        assert (row["reference"], row["reference_from"]) == (winner, "majority")


def test_a_worker_killed_between_rounds_leaves_each_vote_exactly_once(
    engine: Engine, db_url: str, runner: VerifierRunner, tmp_path: Path
) -> None:
    # Slow replies, one prompt at a time, and rounds of one sample (early stop after one accepted,
    # which a vote needs two agreeing samples for): the kill falls inside a prompt.
    teacher, standin = start_standin(tmp_path, "--ttft", "0.3")
    spec = _spec(teacher, 3, n=5, stop_after_accepted=1)
    job_id = jobs.create_job(engine, spec).id
    env = {
        "TRACEMILL_DATABASE_URL": db_url,
        "TRACEMILL_DATA_DIR": str(tmp_path),
        "TRACEMILL_LEASE_SECONDS": "2",
    }
    worker_args = ["worker", "--max-in-flight", "1", "--verifier-processes", "1"]
    stats = teacher.removesuffix("/v1") + "/tracemill/stats"
    processes = [standin]
    try:
        doomed = spawn(worker_args, tmp_path / "doomed.log", env)
        processes.append(doomed)
        deadline = time.monotonic() + 60
        while len(httpx.get(stats).json()["intervals"]) < 2:  # two replies of the first prompt are in
            assert time.monotonic() < deadline, (tmp_path / "doomed.log").read_text()
            time.sleep(0.05)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        assert jobs.get_job(engine, job_id).tasks.done == 0
        processes.append(spawn(worker_args, tmp_path / "survivor.log", env))  # claims once leases end
        while jobs.get_job(engine, job_id).tasks.done < 3:
            assert time.monotonic() < deadline, (tmp_path / "survivor.log").read_text()
            time.sleep(0.2)
        job = jobs.get_job(engine, job_id)
        assert (job.tasks.done, job.tasks.failed) == (3, 0)
        samples = _samples(engine, job_id)
        _check_votes(samples)
        assert sum(len(g) for g in samples.values()) == job.samples.total
        # The same job run without a kill draws the very same samples (seeds are per prompt and round).
        calm_id = jobs.create_job(engine, spec).id
        asyncio.run(Worker(engine, runner, 30, 2, 8, exit_when_idle=True).run())
        calm = _samples(engine, calm_id)
    finally:
        stop(list(reversed(processes)))
    assert {p: [s.completion for s in g] for p, g in samples.items()} == {
        p: [s.completion for s in sorted(g, key=lambda s: s.sample_index)] for p, g in calm.items()
    }
    assert any(len(g) > 2 for g in samples.values())  # some prompt took more than two rounds

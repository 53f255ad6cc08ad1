"""reasoning-gym end to end: ``tracemill submit --reasoning-gym`` over three tasks to a live stack with
the stand-in teacher; every sample's verdict is the task scorer's own."""

from __future__ import annotations

import json

import reasoning_gym

from service.presets.procedural import procedural_prompts
from tests.e2e.conftest import Stack, shard_rows, submit, wait_done
from verifiers.procedural import extract

TASKS = ["basic_arithmetic:10:1", "chain_sum:10:2", "spell_backward:6:3"]
CONFIGS = {"chain_sum": {"min_terms": 2, "max_terms": 3}}


def test_a_job_over_three_tasks_is_judged_as_their_scorers_judge(stack: Stack) -> None:
    args = [arg for task in TASKS for arg in ("--reasoning-gym", task)]
    done = submit(stack, *args, "--reasoning-gym-config", f"chain_sum={json.dumps(CONFIGS['chain_sum'])}")
    assert "queued 26 prompts" in done.stderr
    job_id = done.stdout.strip()
    job = wait_done(stack.client, job_id)
    assert [v["name"] for v in job["verifiers"]] == ["format", "reasoning_gym"]
    rows = shard_rows(stack.client, job_id)
    # The same prompts again (they are a function of task, count, seed and config): their entries.
    entries = {p["id"]: p["metadata"]["reasoning_gym"] for p in procedural_prompts(TASKS, CONFIGS)}
    assert len(rows) == 52
    accepted_by_task: dict[str, int] = {}
    for row in rows:
        (verdict,) = [v for v in row["verdicts"] if v["verifier"] == "reasoning_gym"]
        entry = entries[row["prompt_id"]]
        task = entry["metadata"]["source_dataset"]
        answer = extract(row["answer"] or "")
        score = 0.0 if answer is None else reasoning_gym.get_score_answer_fn(task)(answer=answer, entry=entry)
        assert verdict["accepted"] == (score >= 1.0), (row["prompt_id"], answer, score, verdict)
        accepted_by_task[task] = accepted_by_task.get(task, 0) + verdict["accepted"]
    # The stand-in solves arithmetic it finds in a prompt, and spells nothing backward.
    assert accepted_by_task["basic_arithmetic"] > 0 and accepted_by_task["chain_sum"] > 0
    assert accepted_by_task["spell_backward"] == 0

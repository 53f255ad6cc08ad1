"""The whole path over real HTTP on 127.0.0.1, with every part a real process.

stand-in teacher + ``tracemill serve`` + ``tracemill worker``: a job goes in over HTTP and comes out
as Parquet shards whose contents agree with what the API reports.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections import Counter
from pathlib import Path

from service.standin.server import DEFAULT_MODEL
from tests.e2e.conftest import CLI, READ_TOKEN, SECRET, Stack, shard_rows, submit, wait_done


def test_a_job_of_20_prompts_by_4_lands_in_shards_that_agree_with_the_api(stack: Stack) -> None:
    prompts = [
        {"id": f"q{i}", "prompt": f"Compute ({i} + 7) * {i + 2}.", "reference": str((i + 7) * (i + 2))}
        for i in range(20)
    ]
    body = {
        "teacher": {"base_url": stack.teacher, "model": DEFAULT_MODEL, "api_key_env": "TEACHER_KEY"},
        "n": 4,
        "sampling": {"seed": 11, "max_tokens": 4096},
        "prompts": prompts,
    }
    created = stack.client.post("/v1/jobs", json=body)
    assert created.status_code == 201
    job_id = created.json()["id"]
    job = wait_done(stack.client, job_id)

    rows = shard_rows(stack.client, job_id)
    assert len(rows) == 80
    assert Counter(r["prompt_id"] for r in rows) == {p["id"]: 4 for p in prompts}
    assert len({(r["prompt_id"], r["sample_index"]) for r in rows}) == 80
    assert all(len(r["verdicts"]) == 1 and r["verdicts"][0]["verifier"] == "format" for r in rows)
    assert all(r["accepted"] == r["verdicts"][0]["accepted"] for r in rows)

    accepted = sum(r["accepted"] for r in rows)
    assert job["tasks"] == {
        "total": 20,
        "draft": 0,
        "queued": 0,
        "paused": 0,
        "running": 0,
        "done": 20,
        "failed": 0,
        "cancelled": 0,
    }
    assert job["samples"] == {
        "total": 80,
        "accepted": accepted,
        "rejected": 80 - accepted,
        "acceptance_rate": round(accepted / 80, 4),
    }
    assert 0 < accepted < 80
    reasons = Counter(reason for r in rows for reason in r["reasons"])
    assert job["rejection_reasons"] == dict(reasons)
    assert job["tokens"]["completion"] == sum(r["completion_tokens"] for r in rows)
    assert job["shards"] == len(stack.client.get(f"/v1/jobs/{job_id}/shards").json())

    page = stack.client.get(f"/v1/jobs/{job_id}/samples", params={"status": "rejected", "limit": 5}).json()
    assert page["items"] and all(not s["accepted"] for s in page["items"])
    some_reason = next(iter(reasons))
    filtered = stack.client.get(
        f"/v1/jobs/{job_id}/samples", params={"reason": some_reason, "limit": 1000}
    ).json()
    assert len(filtered["items"]) == reasons[some_reason]


def test_the_secret_is_nowhere_but_the_environment(stack: Stack) -> None:
    job_ids = [j["id"] for j in stack.client.get("/v1/jobs").json()]
    assert job_ids, "runs after the job above"
    responses = [
        stack.client.get(path).text
        for job_id in job_ids
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/samples", f"/v1/jobs/{job_id}/shards")
    ]
    files = [p for p in stack.data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any(p.suffix == ".log" for p in files)
    for text in responses:
        assert SECRET not in text
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_submit_and_status_from_the_command_line(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "problems.jsonl"
    source.write_text(
        "".join(
            json.dumps({"uid": f"u{i}", "problem": f"What is {i} * 3 + 1?", "answer": str(3 * i + 1)}) + "\n"
            for i in range(12)
        )
    )
    fields = ["--prompt-field", "problem", "--id-field", "uid", "--reference-field", "answer"]
    submitted = submit(stack, str(source), *fields)
    job_id = submitted.stdout.strip()
    assert "queued 12 prompts" in submitted.stderr
    assert "samples:" in submitted.stderr and "shards:" in submitted.stderr
    status = subprocess.run(
        [*CLI, "status", job_id, "--api", stack.api, "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TRACEMILL_TOKEN": READ_TOKEN},
    )
    job = json.loads(status.stdout)
    assert job["tasks"]["done"] == 12 and job["samples"]["total"] == 24
    rows = shard_rows(stack.client, job_id)
    assert sorted(r["prompt_id"] for r in rows) == sorted(f"u{i}" for i in range(12) for _ in range(2))
    assert {r["reference"] for r in rows} == {str(3 * i + 1) for i in range(12)}
    hosts = subprocess.run(
        [*CLI, "status", "--api", stack.api],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TRACEMILL_TOKEN": READ_TOKEN},
    )
    assert "1 live workers on 1 hosts" in hosts.stdout
    assert socket.gethostname()[:24] in hosts.stdout and stack.teacher in hosts.stdout


def test_a_plugin_scores_against_the_metadata_submit_passed(stack: Stack, tmp_path: Path) -> None:
    # No reference column: the generator's answer sits in the row's own columns, gathered into the
    # prompt's metadata by --metadata-field, where the third-party `target` verifier reads it.
    source = tmp_path / "generated.jsonl"
    rows = [{"question": f"What is {i} * 3 + 1?", "target": 3 * i + 1, "level": i % 3} for i in range(8)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fields = ["--prompt-field", "question", "--metadata-field", "target", "--metadata-field", "level"]
    submitted = submit(stack, str(source), *fields, "--verifier", "target")
    job_id = submitted.stdout.strip()
    samples = stack.client.get(f"/v1/jobs/{job_id}/samples", params={"limit": 100}).json()["items"]
    assert len(samples) == 16
    for sample in samples:
        (verdict,) = sample["verdicts"]
        details = verdict["details"]
        assert (details["prompt_id"], details["sample_index"]) == (
            sample["prompt_id"],
            sample["sample_index"],
        )
        target = rows[int(sample["prompt_id"])]["target"]
        assert verdict["accepted"] == (f"\\boxed{{{target}}}" in (sample["answer"] or ""))
        assert verdict["reason"] in (None, "target:wrong", "target:no_answer")
    assert any(s["accepted"] for s in samples) and not any(s["reason"] == "target:no_target" for s in samples)


def test_a_third_party_verifier_runs_end_to_end(stack: Stack) -> None:
    body = {
        "teacher": {"base_url": stack.teacher, "model": DEFAULT_MODEL},
        "n": 3,
        "sampling": {"seed": 2},
        "verifiers": [{"name": "format"}, {"name": "keyword", "options": {"word": "answer"}}],
        "prompts": [{"id": "k1", "prompt": "Compute 2 + 2."}, {"id": "k2", "prompt": "Compute 3 * 3."}],
    }
    job_id = stack.client.post("/v1/jobs", json=body).json()["id"]
    job = wait_done(stack.client, job_id)
    assert [v["name"] for v in job["verifiers"]] == ["format", "keyword"]
    rows = shard_rows(stack.client, job_id)
    assert all([v["verifier"] for v in r["verdicts"]] == ["format", "keyword"] for r in rows)
    keyword = [v for r in rows for v in r["verdicts"] if v["verifier"] == "keyword"]
    assert all(
        v["accepted"] == ("answer" in r["answer"].lower())
        for r, v in zip(rows, keyword, strict=True)
        if r["answer"]
    )


def test_a_sympy_hang_is_a_timeout_and_the_worker_goes_on(stack: Stack) -> None:
    prompts = [
        {"id": "hang", "prompt": "Compute 2 + 1.", "reference": "9^{9^{9}}"},
        {"id": "ok-1", "prompt": "Compute 2 + 1.", "reference": "3"},
        {"id": "ok-2", "prompt": "Compute 5 * 5.", "reference": "25"},
    ]
    body = {
        "teacher": {"base_url": stack.teacher, "model": DEFAULT_MODEL},
        "n": 2,
        "sampling": {"seed": 4},
        "verifiers": [{"name": "math", "options": {"timeout_s": 1}}],
        "prompts": prompts,
    }
    job_id = stack.client.post("/v1/jobs", json=body).json()["id"]
    job = wait_done(stack.client, job_id)
    assert job["tasks"]["done"] == 3
    rows = shard_rows(stack.client, job_id)
    by_prompt: dict[str, set[str | None]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_id"], set()).add(row["verdicts"][0]["reason"])
    assert by_prompt["hang"] == {"math:timeout"}
    assert "math:timeout" not in by_prompt["ok-1"] | by_prompt["ok-2"]
    assert any(r["accepted"] for r in rows)

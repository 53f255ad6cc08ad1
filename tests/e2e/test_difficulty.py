"""Distil where the student is weak: a student probe, a teacher job on the prompts it failed, and a
curriculum export, each step's counts checked against what the stand-ins are known to solve."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

from service.launch.procs import stop
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from tests.e2e.conftest import CLI, JOB_TIMEOUT_S, SUBMIT_TOKEN, Stack, submit, wait_done

PROMPTS = 200
VERIFIERS = [{"name": "format"}, {"name": "math"}]


def _prompts() -> list[dict[str, str]]:
    """Even ids are small sums (every number at most 20), odd ids large ones."""
    prompts = []
    for i in range(PROMPTS):
        a, b = (i % 10 + 1, i % 9 + 2) if i % 2 == 0 else (21 + i, 30 + i % 7)
        prompts.append({"id": f"p{i:03d}", "prompt": f"Compute {a} + {b}.", "reference": str(a + b)})
    return prompts


def _pass_rates(client: httpx.Client, job_id: str, **bounds: float) -> dict[str, float]:
    rates: dict[str, float] = {}
    cursor: int | None = None
    while True:
        params: dict[str, Any] = {**bounds, "limit": 64} | ({"cursor": cursor} if cursor is not None else {})
        page = client.get(f"/v1/jobs/{job_id}/pass-rates", params=params).raise_for_status().json()
        rates |= {item["prompt_id"]: item["pass_rate"] for item in page["items"]}
        if (cursor := page["next_cursor"]) is None:
            return rates


def _export(client: httpx.Client, **body: Any) -> dict[str, Any]:
    export_id = (
        client.post("/v1/exports", json={**body, "reasoning_share": 1.0}).raise_for_status().json()["id"]
    )
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (state := client.get(f"/v1/exports/{export_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "done", state
    return state


def _rows_in_file_order(location: str) -> list[dict[str, Any]]:
    files = sorted(Path(location, "data").glob("train-*.parquet"))
    return [row for path in files for row in pq.read_table(path).to_pylist()]


def test_probe_select_distil_and_export_by_curriculum(stack: Stack, tmp_path: Path) -> None:
    student_url, student = start_standin(tmp_path, "--correct-share", "1", "--hard-above", "20")
    try:
        probe = {
            "name": "student probe",
            "role": "student",
            "teacher": {"base_url": student_url, "model": DEFAULT_MODEL},
            "n": 4,
            "sampling": {"max_tokens": 300, "seed": 7},
            "verifiers": VERIFIERS,
            "prompts": _prompts(),
        }
        probe_id = stack.client.post("/v1/jobs", json=probe).raise_for_status().json()["id"]
        wait_done(stack.client, probe_id)
    finally:
        stop([student])

    # The student solves every small sum in 4 of 4 and no large one.
    hard = {f"p{i:03d}" for i in range(1, PROMPTS, 2)}
    rates = _pass_rates(stack.client, probe_id)
    assert len(rates) == PROMPTS
    assert {p for p, rate in rates.items() if rate == 0.0} == hard
    assert {rate for p, rate in rates.items() if p not in hard} == {1.0}
    assert set(_pass_rates(stack.client, probe_id, max_pass_rate=0.25)) == hard

    # The teacher is asked the prompts the student solved in at most 1 of 4, from the command line.
    args = [
        "--prompts-from",
        probe_id,
        "--max-pass-rate",
        "0.25",
        "--verifier",
        "format",
        "--verifier",
        "math",
    ]
    teacher_id = submit(stack, *args).stdout.split()[0]
    job = stack.client.get(f"/v1/jobs/{teacher_id}").json()
    assert job["tasks"]["total"] == len(hard)
    assert job["spec"]["prompts_from"] == {
        "job": probe_id,
        "min_pass_rate": 0.0,
        "max_pass_rate": 0.25,
        "limit": None,
        "order": "hardest",
        "of": "student",
        "selected": len(hard),
    }
    page = stack.client.get(f"/ui/jobs/{teacher_id}").text
    assert f'href="/ui/jobs/{probe_id}"' in page and "(a student job)" in page
    assert "a student probe" in stack.client.get(f"/ui/jobs/{probe_id}").text
    teacher_rates = _pass_rates(stack.client, teacher_id)
    assert set(teacher_rates) == hard
    solved = {p for p, rate in teacher_rates.items() if rate > 0}
    assert 0 < len(solved) < len(hard)  # the stand-in teacher is right in 60% of its samples

    # A curriculum: one row per solved prompt, easy to hard by the teacher's pass rate across the files.
    state = _export(stack.client, jobs=[teacher_id], order="curriculum")
    rows = _rows_in_file_order(state["location"])
    assert {r["prompt_id"] for r in rows} == solved and len(rows) == len(solved)
    assert [r["pass_rate"] for r in rows] == sorted((r["pass_rate"] for r in rows), reverse=True)
    assert all(r["pass_rate"] == teacher_rates[r["prompt_id"]] for r in rows)
    assert {r["student_pass_rate"] for r in rows} == {0.0}
    card = Path(state["location"], "README.md").read_text()
    assert "ordered easy to hard by the teacher's pass rate" in card
    assert f"the {len(hard)} prompts of job `{probe_id}` (a student job)" in card
    assert Path(state["location"], "difficulty.svg").read_text().startswith("<svg")

    # Bounds on the pass rate leave out exactly the prompts the teacher solved less often.
    easy_only = _export(stack.client, jobs=[teacher_id], min_pass_rate=0.75)
    assert {r["prompt_id"] for r in _rows_in_file_order(easy_only["location"])} == {
        p for p, rate in teacher_rates.items() if rate >= 0.75
    }


def test_prompts_from_a_job_that_has_not_ended_is_refused_naming_the_field(stack: Stack) -> None:
    body = {
        "teacher": {"base_url": stack.teacher, "model": DEFAULT_MODEL},
        "start": False,
        "prompts_from": {"job": "no-such-job"},
    }
    response = stack.client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "prompts_from.job"
    draft = stack.client.post("/v1/jobs", json={**body, "prompts_from": None}).json()["id"]
    response = stack.client.post("/v1/jobs", json={**body, "prompts_from": {"job": draft}})
    assert response.status_code == 422 and "is draft" in response.json()["message"]
    both = {**body, "prompts_from": {"job": draft}, "prompts": [{"id": "a", "prompt": "1 + 1"}]}
    assert "not both" in stack.client.post("/v1/jobs", json=both).json()["message"]


def test_exporting_a_student_probe_is_refused(stack: Stack, tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "submit", "--api", stack.api, "--teacher-url", stack.teacher, "--model", DEFAULT_MODEL,
         "--role", "student", "-n", "1", str(_prompt_file(tmp_path))],
        capture_output=True, text=True, timeout=JOB_TIMEOUT_S, check=True,
        env={**os.environ, "TRACEMILL_TOKEN": SUBMIT_TOKEN},
    )  # fmt: skip
    probe_id = result.stdout.split()[0]
    response = stack.client.post("/v1/exports", json={"jobs": [probe_id]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "jobs.0"
    assert "student probe" in response.json()["message"]


def _prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in _prompts()[:4]))
    return path


def test_submit_spends_an_adaptive_budget_and_no_more(stack: Stack, tmp_path: Path) -> None:
    job_id = submit(stack, str(_prompt_file(tmp_path)), "--adaptive-budget", "6").stdout.split()[0]
    job = stack.client.get(f"/v1/jobs/{job_id}").json()
    assert job["spec"]["adaptive_budget"] == {"total_samples": 6, "first_round": 1}
    assert job["spec"]["stop_after_accepted"] == 1
    assert "6 samples in all, in rounds of 1" in stack.client.get(f"/ui/jobs/{job_id}").text
    assert 4 <= job["samples"]["total"] <= 6
    buckets = stack.client.get(f"/v1/jobs/{job_id}/difficulty").json()
    assert (
        sum(b["prompts"] for b in buckets) == 4
        and sum(b["samples"] for b in buckets) == job["samples"]["total"]
    )

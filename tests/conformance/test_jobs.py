"""A 12-prompt job end to end through ``tracemill serve`` and ``tracemill worker`` on a real vLLM:
once over its OpenAI server, once with the engine inside the worker. SmolLM2-135M is tiny, so few
samples pass the verifiers; what is checked is the path: every task done, every sample in a shard.
Prompts are few and completions cut at 48 tokens: the path is the same at any size, and vLLM's CPU
build makes 10-30 tokens/s on two cores (a 50-prompt job took 270-460 s), while the tier must stay a
few minutes (CI runs it after the whole first tier)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from service.cli.client import ApiClient
from service.cli.demo import bundled_prompts
from service.launch.procs import free_port, spawn, stop, wait_http
from service.launch.smollm2 import SERVED_NAME
from service.launch.vllm_server import LOCAL_ENGINE_OPTIONS

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1200)]

PROMPTS = 12
N = 2
MAX_TOKENS = 48
JOB_TIMEOUT_S = 900.0
ENGINE_READY_TIMEOUT_S = 600.0


@pytest.fixture
def api(tmp_path: Path, smollm2_dir: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    env = {
        "TRACEMILL_DATA_DIR": str(tmp_path),
        "TRACEMILL_FLUSH_INTERVAL": "0.5",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "TRACEMILL_ENGINE_MODELS": str(smollm2_dir),  # the one model vllm-engine jobs may load
    }
    port = free_port()
    process = spawn(["serve", "--port", str(port)], tmp_path / "api.log", env)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", process, tmp_path / "api.log")
        yield f"http://127.0.0.1:{port}", tmp_path, env
    finally:
        stop([process])


RULES = [{"name": v} for v in ("format", "math", "langmix", "length")]


def _run_job(
    api: tuple[str, Path, dict[str, str]],
    teacher: dict[str, Any],
    verifiers: list[dict[str, Any]] = RULES,
    prompts: int = PROMPTS,
    **more: Any,
) -> dict[str, Any]:
    url, data_dir, env = api
    worker = spawn(["worker", "--verifier-processes", "1"], data_dir / "worker.log", env)
    client = ApiClient(url)
    try:
        created = client.create_job(
            {
                "name": f"real vLLM, {teacher.get('kind', 'openai')}",
                "teacher": teacher,
                "n": N,
                "prompts": bundled_prompts()[:prompts],
                "sampling": {"seed": 7, "max_tokens": MAX_TOKENS},
                "verifiers": verifiers,
                **more,
            }
        )
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (job := client.job(created["id"]))["status"] != "done":
            assert job["status"] in ("queued", "running"), job
            assert worker.poll() is None, (data_dir / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"not done in {JOB_TIMEOUT_S:.0f} s: {job}"
            time.sleep(1)
        time.sleep(1.5)  # the API's flusher writes the last shard rows
        job = client.job(created["id"])
        job["shards"] = client.shards(created["id"])
        return job
    finally:
        client.close()
        stop([worker], timeout_s=60)


def _check_and_report(job: dict[str, Any], label: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert job["tasks"]["done"] == PROMPTS and job["tasks"]["failed"] == 0
    samples = job["samples"]
    assert samples["total"] == PROMPTS * N
    rows = sum(pq.read_metadata(shard["location"]).num_rows for shard in job["shards"])
    assert rows == PROMPTS * N
    seconds = (
        _time(job["finished_at"]) - _time(job["started_at"])
        if job.get("finished_at") and job.get("started_at")
        else float("nan")
    )
    with capsys.disabled():
        print(
            f"\n{label}: {PROMPTS} prompts x {N} in {seconds:.1f} s = "
            f"{samples['total'] / seconds:.2f} samples/s, "
            f"{job['tokens']['completion'] / seconds:.0f} output tokens/s; "
            f"accepted {samples['accepted']}, rejected {samples['rejected']}"
        )


def _time(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def test_a_job_on_the_vllm_server(
    api: tuple[str, Path, dict[str, str]], vllm_server: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    job = _run_job(api, {"base_url": vllm_server[0], "model": SERVED_NAME})
    _check_and_report(job, "vLLM OpenAI server", capsys)


def test_a_judge_job_on_the_vllm_server(
    api: tuple[str, Path, dict[str, str]], vllm_server: tuple[str, int]
) -> None:
    """The teacher judges its own samples. SmolLM2's verdicts are poor and often unreadable: the
    point is the path (questions sent, replies read, tokens counted) and parse failures as reasons."""
    model = {"base_url": vllm_server[0], "model": SERVED_NAME}
    judge = {"name": "judge", "options": {"judge": model, "max_tokens": 32}}
    job = _run_job(api, model, [judge], prompts=4)
    assert job["tasks"]["done"] == 4 and job["samples"]["total"] == 4 * N
    assert set(job["rejection_reasons"]) <= {"judge:incorrect", "judge:unparseable", "judge:no_answer"}
    (stats,) = job["verifiers"]
    assert stats["accepted"] + stats["rejected"] == 4 * N
    usage = {u["role"]: u for u in job["usage"]}
    if job["rejection_reasons"].get("judge:no_answer", 0) < 4 * N:
        assert usage["judge"]["completion_tokens"] > 0 and stats["tokens"] > 0


def test_a_student_probe_on_the_vllm_server(
    api: tuple[str, Path, dict[str, str]], vllm_server: tuple[str, int]
) -> None:
    """SmolLM2 as the student of a probe job: its pass rate per prompt is low (it is tiny and no
    reasoner); the point is the path, pass rates read back and a teacher job's prompts chosen by them."""
    student = {"base_url": vllm_server[0], "model": SERVED_NAME}
    job = _run_job(api, student, prompts=4, role="student")
    assert job["spec"]["role"] == "student" and job["tasks"]["done"] == 4
    rates = httpx.get(f"{api[0]}/v1/jobs/{job['id']}/pass-rates").raise_for_status().json()["items"]
    assert len(rates) == 4 and all(r["samples"] == N and 0 <= r["pass_rate"] <= 1 for r in rates)
    failed = {r["prompt_id"] for r in rates if r["pass_rate"] <= 0.5}
    body = {"teacher": student, "start": False, "prompts_from": {"job": job["id"], "max_pass_rate": 0.5}}
    chosen = httpx.post(f"{api[0]}/v1/jobs", json=body)
    if not failed:  # it solved every prompt at least as often as not: nothing to select
        assert chosen.status_code == 422 and chosen.json()["errors"][0]["field"] == "prompts_from"
        return
    assert chosen.raise_for_status().json()["num_tasks"] == len(failed)


def test_a_job_on_the_in_process_engine(
    api: tuple[str, Path, dict[str, str]], smollm2_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = {
        "kind": "vllm-engine",
        "model": str(smollm2_dir),
        "engine": {"options": LOCAL_ENGINE_OPTIONS},
    }
    job = _run_job(api, teacher)
    _check_and_report(job, "vLLM in-process engine", capsys)
    assert httpx.get(f"{api[0]}/ui/jobs/{job['id']}").status_code == 200  # the job page shows the kind


def test_a_job_with_soft_labels_on_the_vllm_server(
    api: tuple[str, Path, dict[str, str]], vllm_server: tuple[str, int], smollm2_dir: Path
) -> None:
    """The soft-label path end to end on real vLLM: ids and log-probabilities from the server, a
    soft-label shard, an export with SmolLM2's own tokenizer as the student's, one KD step."""
    from transformers import AutoTokenizer

    from tests.kd import kd_loss

    url, data_dir, env = api
    worker = spawn(["worker", "--verifier-processes", "1"], data_dir / "worker.log", env)
    client = ApiClient(url)
    try:
        created = client.create_job(
            {
                "teacher": {"base_url": vllm_server[0], "model": SERVED_NAME},
                "n": 2,
                "prompts": bundled_prompts()[:10],
                "sampling": {"seed": 3, "max_tokens": 48},
                "verifiers": [],  # keep every sample: SmolLM2 passes few checks, the labels are the point
                "soft_labels": {"top_k": 5, "tokenizer": str(smollm2_dir)},
            }
        )
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while client.job(created["id"])["status"] != "done":
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(1)
    finally:
        client.close()
        stop([worker], timeout_s=60)
    out = data_dir / "export"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "export",
            "--job",
            created["id"],
            "--output",
            str(out),
            "--keep-per-prompt",
            "2",
            "--soft-labels",
            "--student-tokenizer",
            str(smollm2_dir),
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(out / "soft_labels").to_pylist()
    assert len(rows) == 20
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    for row in rows:
        mask = np.array(row["loss_mask"], dtype=bool)
        completion = np.array(row["input_ids"])[mask]
        top = np.array(row["teacher_top_ids"]).reshape(-1, row["top_k"])
        logprobs = np.array(row["teacher_top_logprobs"], dtype=np.float32).reshape(-1, row["top_k"])
        assert len(top) == len(completion) <= 48 and (top >= 0).all()
        assert (logprobs <= 0).all() and (np.diff(logprobs, axis=1) <= 1e-3).all()
        assert tokenizer.decode(completion[: mask.sum()], skip_special_tokens=True).strip()
    torch = pytest.importorskip("torch")
    embed, head = torch.nn.Embedding(len(tokenizer), 8), torch.nn.Linear(8, len(tokenizer))
    loss = torch.stack([kd_loss(row, head, embed, temperature=2.0) for row in rows[:4]]).mean()
    loss.backward()
    assert torch.isfinite(loss)

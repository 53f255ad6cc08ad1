"""A job with two teacher servers, one of which dies mid-job, finishes on the other."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from tests.e2e.conftest import wait_done

PROMPTS = 40
N = 2
SLOW = ("--ttft", "0.05", "--max-num-seqs", "4")  # slow enough that the job is mid-way when one dies


def _served(teacher: str) -> int:
    stats = httpx.get(teacher.removesuffix("/v1") + "/tracemill/stats").json()
    return len(stats["intervals"])


def test_a_job_finishes_on_the_other_server_when_one_dies(tmp_path: Path) -> None:
    doomed_url, doomed = start_standin(tmp_path, *SLOW)
    survivor_url, survivor = start_standin(tmp_path, *SLOW)
    env = {"TRACEMILL_DATA_DIR": str(tmp_path), "TRACEMILL_FLUSH_INTERVAL": "0.5"}
    port = free_port()
    api = spawn(["serve", "--port", str(port)], tmp_path / "api.log", env)
    processes = [doomed, survivor, api]
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", api, tmp_path / "api.log")
        processes.append(spawn(["worker", "--max-in-flight", "8"], tmp_path / "worker.log", env))
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        prompts = [
            {"id": f"p{i}", "prompt": f"Compute {i} + {i + 1}.", "reference": str(2 * i + 1)}
            for i in range(PROMPTS)
        ]
        job = client.post(
            "/v1/jobs",
            json={
                "teacher": {"base_url": [doomed_url, survivor_url], "model": DEFAULT_MODEL},
                "n": N,
                "prompts": prompts,
                "sampling": {"seed": 3, "max_tokens": 200},
                "verifiers": [{"name": "format"}, {"name": "math"}],
            },
        ).json()
        deadline = time.monotonic() + 60
        while _served(doomed_url) + _served(survivor_url) < 6:  # replies, whether committed yet or not
            assert time.monotonic() < deadline
            time.sleep(0.05)
        served_before = _served(survivor_url)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        before = client.get(f"/v1/jobs/{job['id']}").json()["tasks"]["done"]
        assert before < PROMPTS // 2, "the job should be mid-way when a server dies"

        done = wait_done(client, job["id"])
        assert done["tasks"]["done"] == PROMPTS and done["tasks"]["failed"] == 0
        assert done["samples"]["total"] == PROMPTS * N
        assert done["status_reason"] is None
        assert _served(survivor_url) > served_before + 5  # the survivor took the rest
    finally:
        stop(list(reversed(processes)))

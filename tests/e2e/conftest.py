"""A live stack for end-to-end tests: stand-in teacher, ``tracemill serve`` and a worker as processes.

The API is set up as a team would run it: tokens configured (one ``submit``, one ``read``), and the
teacher key offered to jobs for loopback teachers only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from service.launch.procs import free_port, spawn, stop, wait_http
from service.security.tokens import Role, entry_for, new_token
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin

SECRET = "sk-tracemill-test-4f1c9a7e"
OTHER_SECRET = "s3cr3t-of-another-service-9d2b"  # in the workers' environment, offered to no job
JOB_TIMEOUT_S = 120
SUBMIT_TOKEN = new_token()
READ_TOKEN = new_token()
TOKENS = ",".join([entry_for("alice", Role.submit, SUBMIT_TOKEN), entry_for("robin", Role.read, READ_TOKEN)])


@dataclass
class Stack:
    api: str
    teacher: str
    data_dir: Path
    env: dict[str, str]
    client: httpx.Client  # the API, with the submit token


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("stack")
    env = {
        "TRACEMILL_DATA_DIR": str(data_dir),
        "TRACEMILL_FLUSH_INTERVAL": "0.5",
        "TEACHER_KEY": SECRET,
        "OTHER_SERVICE_SECRET": OTHER_SECRET,
        "TRACEMILL_TOKENS": TOKENS,
        "TRACEMILL_TEACHER_KEYS": '{"TEACHER_KEY": ["127.0.0.1"]}',
    }
    teacher, standin = start_standin(data_dir)
    port = free_port()
    api = spawn(["serve", "--port", str(port)], data_dir / "api.log", env)
    processes = [standin, api]
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", api, data_dir / "api.log")
        processes.append(
            spawn(
                ["worker", "--max-in-flight", "16", "--verifier-processes", "1"], data_dir / "worker.log", env
            )
        )
        api_url = f"http://127.0.0.1:{port}"
        with authorized(api_url, SUBMIT_TOKEN) as client:
            yield Stack(api_url, teacher, data_dir, env, client)
    finally:
        stop(list(reversed(processes)))


CLI = [sys.executable, "-m", "service.cli"]


def submit(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``tracemill submit ARGS`` to the stack's teacher (2 samples a prompt, seed 5), followed to its end."""
    teacher = ["--teacher-url", stack.teacher, "--model", DEFAULT_MODEL, "-n", "2", "--seed", "5"]
    return subprocess.run(
        [*CLI, "submit", *args, "--api", stack.api, *teacher],
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=True,
        env={**os.environ, "TRACEMILL_TOKEN": SUBMIT_TOKEN},
    )


def shard_rows(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every row of a job's shards, as the Parquet files hold them."""
    return [
        row
        for shard in client.get(f"/v1/jobs/{job_id}/shards").json()
        for row in pq.read_table(shard["location"]).to_pylist()
    ]


def authorized(api: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def wait_done(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == "done":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not done in {JOB_TIMEOUT_S} s: {job}")

"""Shards in object storage for real: an S3-compatible server on loopback (moto's, from PyPI), written
by ``tracemill serve`` through s3fs, listed and exported from there, with the keys read from the
environment as botocore reads them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL
from tests.conftest import start_standin
from tests.object_store import s3_client, s3_server

BUCKET = "tracemill-shards"
PROMPTS = 8
TIMEOUT_S = 120


@pytest.fixture
def object_store() -> Iterator[dict[str, str]]:
    """An S3 server on 127.0.0.1 with one bucket; the environment that points boto at it."""
    with s3_server(BUCKET) as env:
        yield env


def _wait(client: httpx.Client, path: str, done: str, field: str = "status") -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_S
    while (state := client.get(path).raise_for_status().json())[field] != done:
        assert state[field] in ("running", "queued"), state
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
    return state


def test_shards_go_to_an_s3_bucket_and_the_export_reads_them_there(
    object_store: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **object_store,
        "TRACEMILL_DATA_DIR": str(tmp_path),
        "TRACEMILL_SHARD_DIR": f"s3://{BUCKET}/shards",
        "TRACEMILL_FLUSH_INTERVAL": "0.3",
    }
    teacher, standin = start_standin(tmp_path)
    port = free_port()
    processes = [standin, spawn(["serve", "--port", str(port)], tmp_path / "api.log", env)]
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", processes[-1], tmp_path / "api.log")
        processes.append(spawn(["worker", "--verifier-processes", "1"], tmp_path / "worker.log", env))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            prompts = [
                {"id": f"p{i}", "prompt": f"Compute {i} + 4.", "reference": str(i + 4)}
                for i in range(PROMPTS)
            ]
            body = {
                "teacher": {"base_url": teacher, "model": DEFAULT_MODEL},
                "n": 2,
                "sampling": {"seed": 3, "max_tokens": 300},
                "verifiers": [{"name": "format"}, {"name": "math"}],
                "prompts": prompts,
            }
            job_id = api.post("/v1/jobs", json=body).raise_for_status().json()["id"]
            job = _wait(api, f"/v1/jobs/{job_id}", "done")
            shards = api.get(f"/v1/jobs/{job_id}/shards").json()
            assert shards and all(s["location"].startswith(f"s3://{BUCKET}/shards/") for s in shards)
            assert sum(s["num_rows"] for s in shards) == job["samples"]["total"] == PROMPTS * 2

            # Every shard is an object in the bucket, of the size the database recorded; nothing else is.
            listed = s3_client(object_store).list_objects_v2(Bucket=BUCKET)["Contents"]
            objects = {o["Key"]: o["Size"] for o in listed}
            assert objects == {f"shards/{s['path']}": s["num_bytes"] for s in shards}

            export_id = api.post("/v1/exports", json={"jobs": [job_id], "reasoning_share": 1.0}).json()["id"]
            state = _wait(api, f"/v1/exports/{export_id}", "done")
            assert state["report"]["accepted"] == job["samples"]["accepted"]
            assert state["rows_written"] == state["report"]["reasoning"] > 0
    finally:
        stop(list(reversed(processes)))
    for log in ("api.log", "worker.log"):
        assert object_store["AWS_SECRET_ACCESS_KEY"] not in (tmp_path / log).read_text()

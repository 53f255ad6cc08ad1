"""``tracemill slurm`` on a real Slurm: two nodes, each a network namespace with its own loopback and
its own stand-in teacher, one of them cancelled midway; nothing may be lost or doubled.

Skipped where Slurm or namespaces are missing, unless ``TRACEMILL_REQUIRE_SLURM`` is set (CI sets it),
when the test fails instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.launch.procs import free_port, spawn, stop, wait_http
from service.standin.server import DEFAULT_MODEL
from tests.e2e.conftest import shard_rows
from tests.netns import network_hosts
from tests.netns import unavailable as namespaces_unavailable
from tests.pg import create_database, postgres_server
from tests.slurm_cluster import Slurm, slurm_cluster
from tests.slurm_cluster import unavailable as slurm_unavailable

PROMPTS = 60
N = 4
TEACHER_PORT = 18000  # on each node's own loopback
JOB_TIMEOUT_S = 240

_why_not = slurm_unavailable() or namespaces_unavailable()
if _why_not and os.environ.get("TRACEMILL_REQUIRE_SLURM"):
    raise RuntimeError(f"TRACEMILL_REQUIRE_SLURM is set but Slurm cannot run here: {_why_not}")
pytestmark = pytest.mark.skipif(_why_not is not None, reason=f"no Slurm cluster here: {_why_not}")


@dataclass
class Cluster:
    slurm: Slurm
    api: httpx.Client
    database_url: str  # as the nodes reach it
    logs: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("slurm")
    with (
        network_hosts(["h1", "h2"]) as hosts,
        postgres_server(also_on=f"{hosts.gateway}/24") as base,
        slurm_cluster(root / "slurm", hosts) as slurm,
    ):
        url = create_database(base, "slurm")
        port = free_port()
        env = {
            "TRACEMILL_DATABASE_URL": url,
            "TRACEMILL_DATA_DIR": str(root),
            "TRACEMILL_FLUSH_INTERVAL": "0.3",
        }
        api = spawn(["serve", "--port", str(port)], root / "api.log", env)
        try:
            wait_http(f"http://127.0.0.1:{port}/v1/health", api, root / "api.log")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                yield Cluster(slurm, client, url.replace("127.0.0.1", hosts.gateway), root / "logs")
        finally:
            stop([api])


def _launch(cluster: Cluster) -> str:
    env = {
        **cluster.slurm.env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TRACEMILL_DATABASE_URL": cluster.database_url,
        "TRACEMILL_LEASE_SECONDS": "5",
    }
    launch = [sys.executable, "-m", "service.cli", "slurm", "submit", "--teacher", "standin"]
    launch += ["--model", DEFAULT_MODEL, "--nodes", "2", "--gpus-per-node", "0", "--exit-when-idle"]
    launch += ["--teacher-port", str(TEACHER_PORT), "--teacher-arg=--ttft=1.5", "--max-in-flight", "2"]
    launch += ["--log-dir", str(cluster.logs), "--ready-timeout", "60"]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert '"base_url": "http://127.0.0.1:18000/v1"' in done.stdout, done.stdout
    return done.stdout.split("array job ")[1].split(":")[0]


def _until(what: str, check: Callable[[], bool], timeout_s: float = JOB_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout_s} s: {what}")
        time.sleep(0.5)


def test_a_job_survives_a_node_cancelled_midway(cluster: Cluster) -> None:
    body = {
        "teacher": {"base_url": f"http://127.0.0.1:{TEACHER_PORT}/v1", "model": DEFAULT_MODEL},
        "n": N,
        "sampling": {"seed": 7, "max_tokens": 1024},
        "verifiers": [{"name": "format"}, {"name": "math"}],
        "prompts": [
            {"id": f"s{i}", "prompt": f"Compute {i} + 3.", "reference": str(i + 3)} for i in range(PROMPTS)
        ],
    }
    job_id = cluster.api.post("/v1/jobs", json=body).raise_for_status().json()["id"]
    array = _launch(cluster)

    def live_hosts() -> set[str]:
        return {w["host"] for w in cluster.api.get("/v1/workers").json() if w["live"]}

    def done_tasks() -> int:
        return int(cluster.api.get(f"/v1/jobs/{job_id}").json()["tasks"]["done"])

    _until("a live worker on each node", lambda: live_hosts() == {"h1", "h2"}, 90)
    _until("a fifth of the prompts done", lambda: done_tasks() >= PROMPTS // 5)
    on_h1 = [task for task, (_, node) in cluster.slurm.tasks().items() if node == "h1"]
    assert len(on_h1) == 1 and on_h1[0].startswith(f"{array}_"), cluster.slurm.tasks()
    cluster.slurm.run("scancel", on_h1[0])
    cancelled_at = done_tasks()
    assert cancelled_at < PROMPTS, "the job ended before a node was cancelled: nothing was tested"

    _until("the job done", lambda: cluster.api.get(f"/v1/jobs/{job_id}").json()["status"] == "done")
    _until("both nodes ended (workers exit when the queue is empty)", lambda: not cluster.slurm.tasks(), 60)

    job = cluster.api.get(f"/v1/jobs/{job_id}").json()
    assert job["tasks"]["done"] == PROMPTS and job["tasks"]["failed"] == 0
    assert job["samples"]["total"] == PROMPTS * N
    rows = shard_rows(cluster.api, job_id)
    doubled = sum(c - 1 for c in Counter(r["sample_id"] for r in rows).values())
    per_prompt = Counter(r["prompt_id"] for r in rows)
    lost = sum(max(0, N - per_prompt[f"s{i}"]) for i in range(PROMPTS))
    figures = f"cancelled_at={cancelled_at}/{PROMPTS} rows={len(rows)} lost={lost} doubled={doubled}"
    print(f"slurm: nodes=2 {figures}")
    assert (lost, doubled, len(rows)) == (0, 0, PROMPTS * N)
    assert cluster.database_url not in (cluster.logs / "tracemill.sbatch").read_text()
    logs = {path.name: path.read_text() for path in cluster.logs.glob("*.out")}
    assert len(logs) == 2, sorted(logs)
    assert sum("stopping on h1" in text for text in logs.values()) == 1, logs
    stopped = {w["host"] for w in cluster.api.get("/v1/workers").json() if w["stopped_at"]}
    assert stopped == {"h1", "h2"}  # both said goodbye: h1 cancelled, h2 idle at the end

"""Chaos across hosts (``bench/chaos.py --hosts N``): each host a network namespace with its own
loopback, its own stand-in teacher and its own workers; PostgreSQL and the API on the machine, the
shards in an S3 server on the machine's loopback (moto's). Needs root (namespaces).

While a job runs, three hosts fail in turn, each in its own way:

- ``h1``'s link is cut for three leases, then restored: its TCP connections stall, its leases expire
  and its tasks run again on other hosts; when the link returns, its late commits must be refused
  by the fence (counted as ``refused``, from the workers' logs);
- ``h2`` dies whole, teacher and workers at once (SIGKILL), and stays down;
- ``h3`` loses its route to PostgreSQL for three leases, link up and its own teacher answering: its
  workers' new connections fail at once while their teacher streams on.

Then the samples are counted as ``chaos.py`` counts them (every prompt exactly n samples; the shards
in the bucket exactly the committed samples, each whole), and an export reads the shards back from the
bucket. Every namespace, the bridge, PostgreSQL and the S3 server are gone at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.chaos_checks import JOB_TIMEOUT_S, Outcome, check_job, job_body, wait_done
from service.database.db import make_engine
from service.launch.procs import free_port, spawn, stop, wait_http
from service.storage.stores import ShardStore
from tests.netns import Hosts, network_hosts
from tests.netns import unavailable as namespaces_unavailable
from tests.object_store import s3_server
from tests.pg import create_database, postgres_server

LEASE_S = 2.0
FAULT_S = 3 * LEASE_S  # how long a cut or a partition lasts
TEACHER_PORT = 18000  # on each host's own loopback
BUCKET = "tracemill-chaos"
REFUSED = "the fence refused the commit of"
_PROBE = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)"


@dataclass
class Host:
    """One host's teacher and workers, started inside its namespace."""

    name: str
    hosts: Hosts
    logs: Path
    env: dict[str, str]
    workers: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        prefix = self.hosts.command(self.name, [])
        teacher = ["teacher-standin", "--port", str(TEACHER_PORT), "--ttft", "1.0", "--token-delay", "0.001"]
        self.processes.append(spawn(teacher, self.logs / f"{self.name}-teacher.log", prefix=prefix))
        self._wait_teacher()
        worker = ["worker", "--max-in-flight", "2", "--verifier-processes", "1"]
        self.processes += [
            spawn(worker, self.logs / f"{self.name}-worker-{i}.log", self.env, prefix=prefix)
            for i in range(self.workers)
        ]

    def _wait_teacher(self) -> None:
        probe = self.hosts.command(self.name, [sys.executable, "-c", _PROBE, f"{_teacher()}/models"])
        deadline = time.monotonic() + 60
        while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            if time.monotonic() > deadline or self.processes[0].poll() is not None:
                raise RuntimeError(f"the teacher on {self.name} did not answer (see {self.logs})")
            time.sleep(0.2)

    def kill(self) -> None:
        """The whole host at once: nothing shuts down cleanly."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def refused(self) -> int:
        """Tasks whose late commits the fence refused, as the host's workers logged them."""
        return sum(
            int(line.split(REFUSED)[1].split()[0])
            for log in self.logs.glob(f"{self.name}-worker-*.log")
            for line in log.read_text(errors="replace").splitlines()
            if REFUSED in line
        )


def _teacher() -> str:
    return f"http://127.0.0.1:{TEACHER_PORT}/v1"


def _faults(hosts: Hosts, by_name: dict[str, Host]) -> list[tuple[str, Callable[[], None]]]:
    """The three faults in order, each a step that blocks while the fault lasts."""

    def cut() -> None:
        hosts.cut("h1")
        time.sleep(FAULT_S)
        hosts.mend("h1")

    def partition() -> None:
        route = ["ip", "-n", hosts.namespace("h3"), "route"]
        subprocess.run([*route, "add", "unreachable", f"{hosts.gateway}/32"], check=True)
        time.sleep(FAULT_S)
        subprocess.run([*route, "del", "unreachable", f"{hosts.gateway}/32"], check=True)

    return [("cut h1", cut), ("killed h2", by_name["h2"].kill), ("partitioned h3", partition)]


def run_once(
    hosts: Hosts, pg_base: str, store_env: dict[str, str], name: str, args: argparse.Namespace
) -> tuple[Outcome, int]:
    """One job across the hosts with the three faults; the outcome and the count of refused commits."""
    url = create_database(pg_base, name)
    root = Path(tempfile.mkdtemp(prefix=f"tracemill-chaos-{name}-"))
    shards = f"s3://{BUCKET}/{name}/shards"
    api_env = {**store_env, "TRACEMILL_DATABASE_URL": url, "TRACEMILL_DATA_DIR": str(root)}
    api_env |= {
        "TRACEMILL_SHARD_DIR": shards,
        "TRACEMILL_FLUSH_INTERVAL": "0.3",
        "TRACEMILL_SHARD_ROWS": "40",
    }
    worker_env = {
        "TRACEMILL_DATABASE_URL": url.replace("127.0.0.1", hosts.gateway),
        "TRACEMILL_DATA_DIR": str(root),
        "TRACEMILL_LEASE_SECONDS": str(LEASE_S),
        "TRACEMILL_MAX_ATTEMPTS": "50",
    }
    port = free_port()
    api = spawn(["serve", "--port", str(port)], root / "api.log", api_env)
    by_name = {h: Host(h, hosts, root, worker_env, args.workers) for h in hosts.names}
    engine = make_engine(url)
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", api, root / "api.log")
        for host in by_name.values():
            host.start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        start = time.monotonic()
        job_id = client.post(
            "/v1/jobs", json=job_body(_teacher(), args.prompts, args.n, timeout_s=20)
        ).json()["id"]
        faults = _faults(hosts, by_name)
        done_faults: list[str] = []

        def chaos() -> None:
            tasks = client.get(f"/v1/jobs/{job_id}").json()["tasks"]
            if faults and tasks["done"] >= args.prompts * (len(done_faults) + 1) // 5:
                what, fault = faults.pop(0)
                fault()
                done_faults.append(what)

        wait_done(engine, job_id, time.monotonic() + JOB_TIMEOUT_S, chaos)
        outcome = _counted(engine, ShardStore(shards), job_id, args)
        outcome.seconds = time.monotonic() - start
        if faults:
            raise RuntimeError(f"the job ended before every fault ran: only {done_faults}")
        outcome.corrupt += _export_mismatch(client, job_id)
        stop([p for host in by_name.values() for p in host.processes])  # workers log what was refused
        return outcome, by_name["h1"].refused()
    finally:
        stop([p for host in by_name.values() for p in host.processes] + [api])
        engine.dispose()


def _counted(engine: Any, store: ShardStore, job_id: str, args: argparse.Namespace) -> Outcome:
    """Wait until the shard writer has written every committed sample, then count."""
    deadline = time.monotonic() + 60
    while True:
        _, outcome = check_job(engine, store, job_id, args.prompts, args.n)
        if not outcome.lost or time.monotonic() > deadline:
            return outcome
        time.sleep(0.5)


def _export_mismatch(client: httpx.Client, job_id: str) -> int:
    """Export the job from the bucket: 0 when it carries every accepted sample, else 1."""
    accepted = client.get(f"/v1/jobs/{job_id}").json()["samples"]["accepted"]
    export_id = client.post("/v1/exports", json={"jobs": [job_id], "reasoning_share": 1.0}).json()["id"]
    deadline = time.monotonic() + 120
    while (state := client.get(f"/v1/exports/{export_id}").json())["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"export {export_id} did not finish: {state}")
        time.sleep(0.3)
    report = state.get("report") or {}
    whole = report.get("accepted") == accepted and state.get("rows_written") == report.get("reasoning") > 0
    return 0 if state["status"] == "done" and whole else 1


def main(args: argparse.Namespace) -> None:
    why_not = namespaces_unavailable()
    if why_not:
        sys.exit(f"chaos --hosts: {why_not}")
    if args.hosts < 3:
        sys.exit("chaos --hosts: at least 3 hosts (one is cut, one killed, one partitioned)")
    total, refused = Outcome(), 0
    names = [f"h{i + 1}" for i in range(args.hosts)]
    with (
        network_hosts(names) as hosts,
        postgres_server(also_on=f"{hosts.gateway}/24") as pg_base,
        s3_server(BUCKET) as store_env,
    ):
        os.environ.update(store_env)  # this process reads the shards back from the bucket
        for run in range(args.runs):
            outcome, run_refused = run_once(hosts, pg_base, store_env, f"hosts{run}", args)
            refused += run_refused
            print(
                f"run {run + 1}: {outcome.seconds:5.1f} s, cut=h1 killed=h2 partitioned=h3 "
                f"refused={run_refused} lost={outcome.lost} doubled={outcome.doubled} "
                f"corrupt={outcome.corrupt}",
                flush=True,
            )
            for name in ("lost", "doubled", "corrupt"):
                setattr(total, name, getattr(total, name) + getattr(outcome, name))
    print(
        f"chaos: hosts={args.hosts} runs={args.runs} refused={refused} lost={total.lost} "
        f"doubled={total.doubled} corrupt={total.corrupt}"
    )
    sys.exit(1 if total.lost or total.doubled or total.corrupt else 0)

"""``tracemill slurm``: one Slurm array job whose every task is a GPU node serving Tracemill's queue.

Each array task starts a teacher on the node's own loopback (``vllm serve``, or the stand-in for a
dry run or a test) and then workers that claim from the shared PostgreSQL. Jobs name the teacher as
``http://127.0.0.1:PORT/v1``: on every node that address is that node's own server, so a node's
workers only ever talk to the GPUs Slurm gave them, and nodes can come and go without a job knowing.

Nothing secret is written into the script: the database URL (with its password) and any teacher key
reach the node in the environment ``sbatch`` passes on (``--export=ALL``, its default).

Requeue-safe by construction: a node that is cancelled, preempted or runs out of time gets SIGTERM,
its workers give their tasks back, and what a SIGKILL cut short comes back when its leases expire.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.errors import TracemillError

READY_TIMEOUT_S = 1800  # a large model's weights can take many minutes to load
TERM_BEFORE_END_S = 120  # Slurm's warning before the time limit, for workers to give their tasks back

_READY_PROBE = """\
import json, sys, time, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url + "/models", timeout=5) as reply:
            json.load(reply)
            sys.exit(0)
    except Exception:
        if time.monotonic() > deadline:
            sys.exit("tracemill-node: the teacher did not answer at " + url + " in " + sys.argv[2] + " s")
        time.sleep(2)
"""


@dataclass(frozen=True)
class SlurmLaunch:
    """What a node runs and what Slurm is asked for."""

    model: str
    nodes: int = 1
    gpus_per_node: int = 1
    tensor_parallel: int | None = None  # default: every GPU of the node in one replica
    teacher: Literal["vllm", "standin"] = "vllm"
    teacher_port: int = 8000
    teacher_args: tuple[str, ...] = ()
    served_model_name: str | None = None
    workers_per_node: int = 1
    max_in_flight: int | None = None
    exit_when_idle: bool = False
    partition: str | None = None
    account: str | None = None
    time_limit: str | None = None  # Slurm's forms: MINUTES, HH:MM:SS, D-HH:MM:SS
    job_name: str = "tracemill"
    venv: Path | None = None
    container: str | None = None  # an Apptainer image, for `apptainer exec --nv`
    log_dir: Path = Path("tracemill-slurm")
    requeue: bool = True
    exclusive: bool = True
    ready_timeout_s: int = READY_TIMEOUT_S
    sbatch_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        checks = [
            (self.nodes >= 1, "nodes", "at least 1"),
            (self.gpus_per_node >= 0, "gpus_per_node", "0 or more"),
            (self.workers_per_node >= 1, "workers_per_node", "at least 1"),
            (0 < self.teacher_port < 65536, "teacher_port", "a TCP port"),
            (self.venv is None or self.container is None, "container", "not given with venv"),
        ]
        for ok, name, what in checks:
            if not ok:
                raise TracemillError(f"{name}: must be {what}")
        if self.teacher == "vllm":
            if self.gpus_per_node < 1:
                raise TracemillError("gpus_per_node: a vLLM teacher needs at least 1 GPU a node")
            if self.gpus_per_node % self.tensor_size:
                raise TracemillError(
                    f"tensor_parallel: {self.tensor_size} does not divide a node's {self.gpus_per_node} GPUs"
                )

    @property
    def tensor_size(self) -> int:
        return self.tensor_parallel or max(self.gpus_per_node, 1)

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.model

    @property
    def teacher_url(self) -> str:
        """The address a job gives as its teacher: on each node, that node's own server."""
        return f"http://127.0.0.1:{self.teacher_port}/v1"

    def job_teacher(self) -> dict[str, str]:
        """The ``teacher`` block of the Tracemill jobs this fleet serves."""
        return {"base_url": self.teacher_url, "model": self.served_name}


def render(launch: SlurmLaunch) -> str:
    """The batch script: Slurm's directives, then the node's teacher and workers."""
    return "\n".join([*_directives(launch), "", *_body(launch), ""])


def _directives(launch: SlurmLaunch) -> list[str]:
    logs = launch.log_dir / "%x-%A_%a.out"
    wanted = [
        f"--job-name={launch.job_name}",
        f"--array=0-{launch.nodes - 1}",
        "--nodes=1",
        "--ntasks=1",
        f"--output={logs}",
        f"--signal=B:TERM@{TERM_BEFORE_END_S}",
        "--requeue" if launch.requeue else "--no-requeue",
    ]
    if launch.exclusive:
        wanted.append("--exclusive")
    if launch.gpus_per_node:
        wanted.append(f"--gres=gpu:{launch.gpus_per_node}")
    for option, value in (("partition", launch.partition), ("account", launch.account)):
        if value:
            wanted.append(f"--{option}={value}")
    if launch.time_limit:
        wanted.append(f"--time={launch.time_limit}")
    wanted.extend(launch.sbatch_args)
    return ["#!/bin/bash", *(f"#SBATCH {shlex.quote(option)}" for option in wanted)]


def _in_place(launch: SlurmLaunch, command: list[str]) -> str:
    """A command as the node runs it: inside the container when there is one."""
    if launch.container:
        command = ["apptainer", "exec", "--nv", launch.container, *command]
    return shlex.join(command)


def _teacher_command(launch: SlurmLaunch) -> list[str]:
    where = ["--host", "127.0.0.1", "--port", str(launch.teacher_port)]
    if launch.teacher == "standin":
        return ["tracemill", "teacher-standin", *where, "--model", launch.served_name, *launch.teacher_args]
    replicas = launch.gpus_per_node // launch.tensor_size
    command = ["vllm", "serve", launch.model, *where, "--served-model-name", launch.served_name]
    command += ["--tensor-parallel-size", str(launch.tensor_size)]
    if replicas > 1:
        command += ["--data-parallel-size", str(replicas)]
    return [*command, *launch.teacher_args]


def _worker_command(launch: SlurmLaunch) -> list[str]:
    command = ["tracemill", "worker"]
    if launch.max_in_flight:
        command += ["--max-in-flight", str(launch.max_in_flight)]
    if launch.exit_when_idle:
        command.append("--exit-when-idle")
    return command


def _body(launch: SlurmLaunch) -> list[str]:
    activate = [f"source {shlex.quote(str(launch.venv / 'bin' / 'activate'))}"] if launch.venv else []
    probe = _in_place(launch, ["python", "-c", _READY_PROBE, launch.teacher_url, str(launch.ready_timeout_s)])
    return [
        "# Rendered by `tracemill slurm`: one array task is one node. Secrets are not in this file: the",
        "# database URL and teacher keys come from the environment sbatch was run in.",
        "set -uo pipefail",
        ': "${TRACEMILL_DATABASE_URL:?set it where sbatch runs (it is not written in this script)}"',
        *activate,
        'node="${SLURMD_NODENAME:-$(hostname)}"',
        'echo "tracemill-node: task ${SLURM_ARRAY_TASK_ID:-0} on $node, restart ${SLURM_RESTART_COUNT:-0}"',
        f"{_in_place(launch, _teacher_command(launch))} &",
        "teacher=$!",
        "workers=()",
        "stop_all() {",
        '  echo "tracemill-node: stopping on $node (workers give their tasks back)"',
        "  if [ ${#workers[@]} -gt 0 ]; then",
        '    kill -TERM "${workers[@]}" 2>/dev/null; wait "${workers[@]}"',
        "  fi",
        '  kill -TERM "$teacher" 2>/dev/null; wait "$teacher"',
        "}",
        "trap 'stop_all; exit 143' TERM INT",
        f"{probe} &",
        'wait $! || { kill -TERM "$teacher" 2>/dev/null; exit 1; }',
        'echo "tracemill-node: teacher ready at ' + launch.teacher_url + ' on $node"',
        f"for _ in $(seq {launch.workers_per_node}); do",
        f"  {_in_place(launch, _worker_command(launch))} &",
        "  workers+=($!)",
        "done",
        'wait "${workers[@]}"',
        "status=$?",
        'echo "tracemill-node: workers ended (status $status) on $node"',
        'kill -TERM "$teacher" 2>/dev/null; wait "$teacher"',
        "exit $status",
    ]


def submit(launch: SlurmLaunch, environment: dict[str, str]) -> tuple[str, Path]:
    """Write the script under the log folder and hand it to ``sbatch``; the array job's id and the
    script's path."""
    if not environment.get("TRACEMILL_DATABASE_URL"):
        raise TracemillError(
            "TRACEMILL_DATABASE_URL: set it where you run this (the nodes get it from sbatch, never from the "
            "script)"
        )
    launch.log_dir.mkdir(parents=True, exist_ok=True)
    script = launch.log_dir / f"{launch.job_name}.sbatch"
    script.write_text(render(launch))
    try:
        done = subprocess.run(
            ["sbatch", "--parsable", str(script)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=60,
            check=False,
        )
    except FileNotFoundError as exc:
        raise TracemillError("sbatch: not found; run this on a Slurm login node") from exc
    if done.returncode != 0:
        raise TracemillError(f"sbatch refused the script {script}: {done.stderr.strip()}")
    return done.stdout.strip().split(";")[0], script

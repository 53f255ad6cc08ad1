"""``tracemill slurm render|submit``: the GPU nodes of a cluster as one Slurm array job."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from service.launch.slurm import READY_TIMEOUT_S, SlurmLaunch, render, submit
from service.settings import Settings


def _launch(args: argparse.Namespace) -> SlurmLaunch:
    return SlurmLaunch(
        model=args.model,
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        tensor_parallel=args.tensor_parallel,
        teacher=args.teacher,
        teacher_port=args.teacher_port,
        teacher_args=tuple(args.teacher_arg),
        served_model_name=args.served_model_name,
        workers_per_node=args.workers_per_node,
        max_in_flight=args.max_in_flight,
        exit_when_idle=args.exit_when_idle,
        partition=args.partition,
        account=args.account,
        time_limit=args.time,
        job_name=args.job_name,
        venv=args.venv,
        container=args.container,
        log_dir=args.log_dir.resolve(),
        requeue=not args.no_requeue,
        exclusive=not args.shared_nodes,
        ready_timeout_s=args.ready_timeout,
        sbatch_args=tuple(args.sbatch_arg),
    )


def cmd_slurm(args: argparse.Namespace, _settings: Settings) -> int:
    launch = _launch(args)
    if args.action == "render":
        print(render(launch), end="")
        return 0
    job_id, script = submit(launch, dict(os.environ))
    print(f"submitted Slurm array job {job_id}: {launch.nodes} node(s), script {script}")
    print(f"node logs: {launch.log_dir}/{launch.job_name}-{job_id}_<task>.out")
    print("`tracemill status` lists their workers once they beat")
    print(f"give jobs this teacher: {json.dumps(launch.job_teacher())}")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``tracemill slurm`` on the ``tracemill`` parser."""
    slurm = sub.add_parser(
        "slurm",
        help="run the teacher and workers on Slurm GPU nodes (one array task a node)",
        description="Each array task serves the model on its node's loopback and runs workers on the "
        "queue in TRACEMILL_DATABASE_URL (taken from the environment, never written into the script).",
    )
    slurm.add_argument("action", choices=["render", "submit"], help="print the batch script, or sbatch it")
    slurm.add_argument("--model", required=True, help="what vllm serve loads (a path or Hub id)")
    slurm.add_argument("--served-model-name", help="the name jobs give as teacher model (default: --model)")
    slurm.add_argument("--nodes", type=int, default=1, help="array tasks, one node each")
    slurm.add_argument("--gpus-per-node", type=int, default=1)
    slurm.add_argument("--tensor-parallel", type=int, help="GPUs a replica (default: all of a node's)")
    slurm.add_argument(
        "--teacher", choices=["vllm", "standin"], default="vllm", help="standin: the stand-in, for dry runs"
    )
    slurm.add_argument("--teacher-port", type=int, default=8000)
    slurm.add_argument(
        "--teacher-arg", action="append", default=[], help="one more argument for the teacher (repeatable)"
    )
    slurm.add_argument("--workers-per-node", type=int, default=1)
    slurm.add_argument("--max-in-flight", type=int, help="teacher requests open at once, per worker")
    slurm.add_argument("--exit-when-idle", action="store_true", help="nodes end once the queue is empty")
    slurm.add_argument("--partition")
    slurm.add_argument("--account")
    slurm.add_argument("--time", help="time limit per node (MINUTES, HH:MM:SS or D-HH:MM:SS)")
    slurm.add_argument("--job-name", default="tracemill")
    slurm.add_argument("--venv", type=Path, help="a venv with tracemill (and vllm) on the nodes")
    slurm.add_argument("--container", help="an Apptainer image to run in instead (apptainer exec --nv)")
    slurm.add_argument("--log-dir", type=Path, default=Path("tracemill-slurm"), help="script and node logs")
    slurm.add_argument("--no-requeue", action="store_true", help="do not let Slurm requeue a node's task")
    slurm.add_argument("--shared-nodes", action="store_true", help="do not ask for whole nodes (--exclusive)")
    slurm.add_argument("--ready-timeout", type=int, default=READY_TIMEOUT_S, help="seconds to load a model")
    slurm.add_argument(
        "--sbatch-arg", action="append", default=[], help="one more #SBATCH option (repeatable)"
    )
    slurm.set_defaults(run=cmd_slurm)

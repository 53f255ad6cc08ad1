"""The batch script ``tracemill slurm`` renders: what Slurm is asked for, what each node runs, and no
secret in it. The script's run on a real Slurm is ``tests/e2e/test_slurm.py``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from service.errors import TracemillError
from service.launch.slurm import SlurmLaunch, render, submit

MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"


def _directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_a_node_is_an_array_task_asking_for_its_gpus_and_requeue(tmp_path: Path) -> None:
    launch = SlurmLaunch(
        model=MODEL,
        nodes=4,
        gpus_per_node=8,
        tensor_parallel=2,
        partition="gpu",
        account="distil",
        time_limit="12:00:00",
        log_dir=tmp_path,
        sbatch_args=("--qos=high",),
    )
    directives = _directives(render(launch))
    expected = ["--array=0-3", "--nodes=1", "--gres=gpu:8", "--partition=gpu", "--account=distil"]
    expected += ["--time=12:00:00", "--requeue", "--exclusive", "--qos=high", "--signal=B:TERM@120"]
    assert set(expected) <= set(directives)
    assert f"--output={tmp_path}/%x-%A_%a.out" in directives
    assert "--no-requeue" in _directives(render(SlurmLaunch(model=MODEL, requeue=False)))


def test_each_node_serves_the_model_on_its_own_loopback_in_replicas_of_the_tensor_size() -> None:
    script = render(SlurmLaunch(model=MODEL, gpus_per_node=8, tensor_parallel=2, teacher_port=8100))
    serve = next(line for line in script.splitlines() if line.startswith("vllm serve"))
    assert "--host 127.0.0.1 --port 8100" in serve
    assert "--tensor-parallel-size 2 --data-parallel-size 4" in serve
    assert f"--served-model-name {MODEL}" in serve
    one = render(SlurmLaunch(model=MODEL, gpus_per_node=2))
    assert "--tensor-parallel-size 2" in one and "--data-parallel-size" not in one
    assert SlurmLaunch(model=MODEL, teacher_port=8100).job_teacher() == {
        "base_url": "http://127.0.0.1:8100/v1",
        "model": MODEL,
    }


def test_workers_start_after_the_teacher_answers_and_stop_before_it() -> None:
    script = render(SlurmLaunch(model=MODEL, workers_per_node=3, max_in_flight=64, exit_when_idle=True))
    lines = script.splitlines()
    ready = next(i for i, line in enumerate(lines) if "teacher ready" in line)
    worker = next(i for i, line in enumerate(lines) if "tracemill worker" in line)
    assert ready < worker and "seq 3" in lines[worker - 1]
    assert "tracemill worker --max-in-flight 64 --exit-when-idle &" in lines[worker]
    assert "trap 'stop_all; exit 143' TERM INT" in lines
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_a_venv_is_activated_and_a_container_wraps_every_command() -> None:
    assert "source /opt/tracemill/bin/activate" in render(
        SlurmLaunch(model=MODEL, venv=Path("/opt/tracemill"))
    )
    contained = render(SlurmLaunch(model=MODEL, container="/images/vllm.sif"))
    assert "apptainer exec --nv /images/vllm.sif vllm serve" in contained
    assert "apptainer exec --nv /images/vllm.sif tracemill worker" in contained


def test_the_stand_in_replaces_vllm_for_a_dry_run_on_gpu_less_nodes() -> None:
    script = render(SlurmLaunch(model="m", teacher="standin", gpus_per_node=0, teacher_args=("--ttft=1",)))
    assert "tracemill teacher-standin --host 127.0.0.1 --port 8000 --model m --ttft=1 &" in script
    assert "--gres" not in script and "vllm serve" not in script


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"gpus_per_node": 3, "tensor_parallel": 2}, "tensor_parallel"),
        ({"gpus_per_node": 0}, "gpus_per_node"),
        ({"nodes": 0}, "nodes"),
        ({"venv": Path("/v"), "container": "i.sif"}, "container"),
    ],
)
def test_impossible_launches_are_refused_naming_the_option(options: dict[str, object], field: str) -> None:
    with pytest.raises(TracemillError, match=f"^{field}:"):
        SlurmLaunch(model=MODEL, **options)  # type: ignore[arg-type]


def test_the_database_url_reaches_the_nodes_through_the_environment_only(tmp_path: Path) -> None:
    """The script only names the variable; submitting without it set is refused before sbatch."""
    assert '"${TRACEMILL_DATABASE_URL:?' in render(SlurmLaunch(model=MODEL, log_dir=tmp_path))
    with pytest.raises(TracemillError, match=r"^TRACEMILL_DATABASE_URL:"):
        submit(SlurmLaunch(model=MODEL, log_dir=tmp_path), {"PATH": "/usr/bin"})

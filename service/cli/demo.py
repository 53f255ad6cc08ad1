"""``tracemill demo``: teacher, API server and worker on loopback, one job of bundled math prompts.

The teacher is the stand-in by default; ``--teacher vllm`` serves the bundled SmolLM2-135M with a real
vLLM OpenAI server, ``--teacher vllm-engine`` runs it in vLLM's engine inside the worker. That model is
tiny and no reasoner, so few of its samples pass: the point is the real path, on a CPU.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from importlib import resources
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.cli.client import ApiClient
from service.cli.report import follow, summary
from service.launch.procs import free_port, spawn, stop, wait_http
from service.launch.smollm2 import SERVED_NAME, ModelUnavailable, model_dir
from service.launch.vllm_server import LOCAL_ENGINE_OPTIONS, VLLM_MISSING, start_vllm_server, vllm_installed
from service.settings import Settings

DEMO_SEED = 1234
DEMO_MAX_TOKENS = 512
DEMO_VERIFIERS = [{"name": name} for name in ("format", "math", "langmix", "readability", "length")]
VLLM_DEMO_PROMPTS = 20  # a 135M model on two CPU cores writes a few hundred tokens a second
VLLM_DEMO_MAX_TOKENS = 256


def bundled_prompts() -> list[dict[str, Any]]:
    """The demo's math prompts, with reference answers, shipped in the package."""
    text = resources.files("service").joinpath("data/demo_prompts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _first_model(teacher_url: str) -> str:
    models = httpx.get(teacher_url.rstrip("/") + "/models", timeout=30).json()["data"]
    return str(models[0]["id"])


def _this_tracemill() -> str:
    """The ``tracemill`` of the environment running now (.venv or .venv-vllm), as the user can type it."""
    command = Path(sys.executable).parent / "tracemill"
    with contextlib.suppress(ValueError):
        return str(command.relative_to(Path.cwd()))
    return str(command)


def _local_vllm(kind: str, logs: Path, env: dict[str, str], processes: list[Popen[bytes]]) -> dict[str, Any]:
    """Start the bundled model in vLLM, as a server or (in the worker) as an engine; its teacher spec."""
    if not vllm_installed():
        raise ModelUnavailable(VLLM_MISSING)
    model = model_dir()
    if kind == "vllm-engine":
        print(f"teacher: {model} in vLLM's engine inside the worker (it starts with the first task)")
        env["TRACEMILL_ENGINE_MODELS"] = str(model)  # the operator's list: this one model
        return {
            "kind": "vllm-engine",
            "model": str(model),
            "engine": {"options": LOCAL_ENGINE_OPTIONS},
        }
    port = free_port()
    print(f"starting a vLLM server on {model} (about 90 s on a CPU; log in {logs / 'vllm.log'})")
    processes.append(start_vllm_server(model, port, logs / "vllm.log"))
    return {"base_url": f"http://127.0.0.1:{port}/v1", "model": SERVED_NAME}


def _remote_or_standin(
    *,
    teacher_url: str | None,
    model: str | None,
    api_key_env: str | None,
    logs: Path,
    env: dict[str, str],
    processes: list[Popen[bytes]],
) -> dict[str, Any]:
    """The server at ``teacher_url``, or a stand-in teacher started here; its teacher spec."""
    if teacher_url is None:
        port = free_port()
        processes.append(spawn(["teacher-standin", "--port", str(port)], logs / "teacher.log", env))
        wait_http(f"http://127.0.0.1:{port}/health", processes[-1], logs / "teacher.log")
        teacher_url = f"http://127.0.0.1:{port}/v1"
        print(f"stand-in teacher on {teacher_url}")
    teacher: dict[str, Any] = {"base_url": teacher_url, "model": model or _first_model(teacher_url)}
    # Whoever runs the demo is its operator: the teacher they named is allowed, and so is their key, for it.
    host = urlsplit(teacher_url).hostname or ""
    env["TRACEMILL_TEACHER_HOSTS"] = json.dumps([host])
    if api_key_env:
        teacher["api_key_env"] = api_key_env
        env["TRACEMILL_TEACHER_KEYS"] = json.dumps({api_key_env: [host]})
    return teacher


def run_demo(
    settings: Settings,
    *,
    teacher_url: str | None,
    model: str | None,
    n: int,
    api_key_env: str | None = None,
    local_teacher: str = "standin",
) -> int:
    """Run the whole path once and print where the shards are; returns an exit code."""
    logs = settings.data_dir.resolve() / "logs"
    env = {
        "TRACEMILL_DATA_DIR": str(settings.data_dir.resolve()),
        "TRACEMILL_DATABASE_URL": settings.database_url,
        "TRACEMILL_SHARD_DIR": settings.shard_store.url(""),
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
    }
    processes: list[Popen[bytes]] = []
    prompts, max_tokens = bundled_prompts(), DEMO_MAX_TOKENS
    try:
        if teacher_url is None and local_teacher != "standin":
            try:
                teacher = _local_vllm(local_teacher, logs, env, processes)
            except ModelUnavailable as exc:
                print(f"tracemill demo: {exc}")
                return 2
            prompts, max_tokens = prompts[:VLLM_DEMO_PROMPTS], VLLM_DEMO_MAX_TOKENS
        else:
            teacher = _remote_or_standin(
                teacher_url=teacher_url,
                model=model,
                api_key_env=api_key_env,
                logs=logs,
                env=env,
                processes=processes,
            )
        api_port = free_port()
        processes.append(spawn(["serve", "--port", str(api_port)], logs / "api.log", env))
        api_url = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api_url}/v1/health", processes[-1], logs / "api.log")
        processes.append(spawn(["worker"], logs / "worker.log", env))
        print(f"API on {api_url} (docs at {api_url}/docs); logs in {logs}")
        client = ApiClient(api_url)
        created = client.create_job(
            {
                "name": "demo",
                "teacher": teacher,
                "n": n,
                "prompts": prompts,
                "sampling": {"seed": DEMO_SEED, "max_tokens": max_tokens},
                "verifiers": DEMO_VERIFIERS,
            }
        )
        print(f"job {created['id']}: {created['num_tasks']} prompts x {n} samples")
        job = follow(client, created["id"])
        print(summary(job, client.shards(created["id"])))
        print(
            f"  browse the samples: {_this_tracemill()} serve, then open "
            f"http://{settings.host}:{settings.port}/ui/jobs/{created['id']}"
        )
        client.close()
        return 0 if job["samples"]["total"] else 1
    finally:
        stop(list(reversed(processes)))

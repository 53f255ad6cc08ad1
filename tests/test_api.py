"""The HTTP API: bad input is a 4xx naming the field and queues nothing; the job life cycle works."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.api.app import create_app, flush_pause
from service.database.models import Job, Task
from service.settings import Settings
from service.storage.shards import FlushResult

VALID: dict[str, Any] = {
    "teacher": {"base_url": "http://127.0.0.1:8000/v1", "model": "teacher", "api_key_env": "TEACHER_KEY"},
    "n": 2,
    "prompts": [
        {"id": "p1", "prompt": "Compute 1 + 1.", "reference": "2"},
        {"id": "p2", "prompt": "Compute 2 * 3."},
    ],
}
JUDGE = {"judge": {"base_url": "http://127.0.0.1:8001/v1", "model": "judge"}}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path, max_request_bytes=200_000, teacher_keys={"TEACHER_KEY": ["127.0.0.1"]}
    )
    with TestClient(create_app(settings, run_flusher=False)) as client:
        yield client


def _counts(client: TestClient) -> tuple[int, int]:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        jobs = conn.execute(select(func.count()).select_from(Job)).scalar_one()
        tasks = conn.execute(select(func.count()).select_from(Task)).scalar_one()
    return jobs, tasks


def _with(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return body


_DELETE = object()

BAD_INPUT = [
    ("missing prompts", _with("prompts", _DELETE), "prompts"),
    ("empty prompts", _with("prompts", []), "prompts"),
    ("n = 0", _with("n", 0), "n"),
    ("negative n", _with("n", -3), "n"),
    ("unknown verifier", _with("verifiers", [{"name": "astrology"}]), "verifiers.0.name"),
    (
        "bad verifier option",
        _with("verifiers", [{"name": "format", "options": {"strictness": 9}}]),
        "verifiers.0.options.strictness",
    ),
    ("malformed teacher URL", _with("teacher.base_url", "localhost:8000"), "teacher.base_url"),
    ("ftp teacher URL", _with("teacher.base_url", "ftp://127.0.0.1/v1"), "teacher.base_url"),
    ("inline API key", _with("teacher.api_key", "sk-secret-123"), "teacher.api_key"),
    ("early stop above n", _with("stop_after_accepted", 99), "stop_after_accepted"),
    ("early stop of 0", _with("stop_after_accepted", 0), "stop_after_accepted"),
    ("bad env var name", _with("teacher.api_key_env", "sk-secret-123"), "teacher.api_key_env"),
    ("no URL for a server", _with("teacher.base_url", _DELETE), "teacher.base_url"),
    ("unknown teacher kind", _with("teacher.kind", "ollama"), "teacher.kind"),
    ("engine for a server", _with("teacher.engine", {"tensor_parallel_size": 2}), "teacher.engine"),
    (
        "a URL for the in-process engine",
        _with("teacher.kind", "vllm-engine"),
        "teacher.base_url",
    ),
    (
        "zero-way tensor parallel",
        _with("teacher", {"kind": "vllm-engine", "model": "m", "engine": {"tensor_parallel_size": 0}}),
        "teacher.engine.tensor_parallel_size",
    ),
    (
        "prompt and messages",
        _with("prompts.0.messages", [{"role": "user", "content": "x"}]),
        "prompts.0.prompt",
    ),
    ("missing prompt id", _with("prompts.0.id", _DELETE), "prompts.0.id"),
    ("temperature out of range", _with("sampling", {"temperature": 9}), "sampling.temperature"),
    ("template without placeholder", _with("prompt_template", "Solve it."), "prompt_template"),
    ("duplicate prompt ids", _with("prompts.1.id", "p1"), "prompts"),
    ("metadata not an object", _with("prompts.0.metadata", [1, 2]), "prompts.0.metadata"),
    (
        "fallback for a later verifier",
        _with(
            "verifiers", [{"name": "judge", "options": JUDGE, "fallback_for": ["math:x"]}, {"name": "math"}]
        ),
        "verifiers.0.fallback_for",
    ),
    (
        "a group verifier as a fallback",
        _with("verifiers", [{"name": "math"}, {"name": "majority", "fallback_for": ["math:no_reference"]}]),
        "verifiers.1.fallback_for",
    ),
    (
        "a fallback reason that is not a reason",
        _with("verifiers", [{"name": "math"}, {"name": "judge", "options": JUDGE, "fallback_for": ["math"]}]),
        "verifiers.1.fallback_for.0",
    ),
    ("a judge without its model", _with("verifiers", [{"name": "judge"}]), "verifiers.0.options.judge"),
    (
        "a judge template without the answer",
        _with("verifiers", [{"name": "judge", "options": {**JUDGE, "template": "Is it right?"}}]),
        "verifiers.0.options.template",
    ),
    (
        "majority share above 1",
        _with("verifiers", [{"name": "majority", "options": {"min_share": 2}}]),
        "verifiers.0.options.min_share",
    ),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_names_the_field_and_queues_nothing(
    client: TestClient, case: str, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert any(e["field"] == field for e in payload["errors"]), payload
    assert field.split(".", maxsplit=1)[0] in payload["message"]
    assert _counts(client) == (0, 0)


def test_an_inline_key_is_not_echoed_back(client: TestClient) -> None:
    response = client.post("/v1/jobs", json=_with("teacher.api_key", "sk-secret-123"))
    assert "sk-secret-123" not in response.text
    assert "api_key_env" in response.json()["message"]


def test_oversized_body_is_413(client: TestClient) -> None:
    body = _with("prompts", [{"id": str(i), "prompt": "x" * 1000} for i in range(300)])
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 413
    assert "/prompts" in response.json()["message"]


def test_create_then_read(client: TestClient) -> None:
    response = client.post("/v1/jobs", json=VALID)
    assert response.status_code == 201
    created = response.json()
    assert created["num_tasks"] == 2 and created["status"] == "running"
    job = client.get(f"/v1/jobs/{created['id']}").json()
    assert job["tasks"]["queued"] == 2 and job["tasks"]["total"] == 2
    assert job["spec"]["teacher"]["api_key_env"] == "TEACHER_KEY"
    assert job["spec"]["verifiers"] == [
        {"name": "format", "options": {}, "fallback_for": None, "abort_early": True}
    ]
    assert job["samples"] == {"total": 0, "accepted": 0, "rejected": 0, "acceptance_rate": None}
    assert [j["id"] for j in client.get("/v1/jobs").json()] == [created["id"]]
    assert client.get(f"/v1/jobs/{created['id']}/samples").json() == {
        "items": [],
        "next_cursor": None,
        "prev_cursor": None,
    }


def test_unknown_job_is_404(client: TestClient) -> None:
    for method, path in (
        ("get", "/v1/jobs/nope"),
        ("post", "/v1/jobs/nope/cancel"),
        ("get", "/v1/jobs/nope/samples"),
        ("get", "/v1/jobs/nope/shards"),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 404
        assert "nope" in response.json()["message"]


def test_prompts_in_pages_then_start(client: TestClient) -> None:
    draft = client.post("/v1/jobs", json={**VALID, "prompts": [], "start": False}).json()
    assert draft["status"] == "draft"
    for page in range(3):
        prompts = [{"id": f"{page}-{i}", "prompt": f"Compute {i} + {page}."} for i in range(100)]
        assert client.post(f"/v1/jobs/{draft['id']}/prompts", json={"prompts": prompts}).status_code == 200
    duplicate = client.post(
        f"/v1/jobs/{draft['id']}/prompts", json={"prompts": [{"id": "0-0", "prompt": "x"}]}
    )
    assert duplicate.status_code == 422
    assert _counts(client) == (1, 300)
    started = client.post(f"/v1/jobs/{draft['id']}/start").json()
    assert started["tasks"]["queued"] == 300 and started["status"] == "running"
    late = client.post(f"/v1/jobs/{draft['id']}/prompts", json={"prompts": [{"id": "late", "prompt": "x"}]})
    assert late.status_code == 409


def test_starting_an_empty_draft_is_refused(client: TestClient) -> None:
    draft = client.post("/v1/jobs", json={**VALID, "prompts": [], "start": False}).json()
    response = client.post(f"/v1/jobs/{draft['id']}/start")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "prompts"


def test_idempotency_key_returns_the_same_job(client: TestClient) -> None:
    body = {**VALID, "idempotency_key": "run-42"}
    first = client.post("/v1/jobs", json=body)
    second = client.post("/v1/jobs", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] and second.json()["created"] is False
    assert _counts(client) == (1, 2)


def test_cancel(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json=VALID).json()["id"]
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["tasks"]["cancelled"] == 2
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 409


def test_openapi_docs_describe_the_routes(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/prompts",
        "/v1/jobs/{job_id}/start",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/samples",
        "/v1/jobs/{job_id}/shards",
    ):
        assert path in paths


def test_a_prompt_over_the_configured_length_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_prompt_chars=50)
    with TestClient(create_app(settings, run_flusher=False)) as client:
        response = client.post("/v1/jobs", json=_with("prompts.1.prompt", "x" * 51))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "prompts.1.prompt"
        assert _counts(client) == (0, 0)


@pytest.mark.parametrize(
    "content",
    [
        b'{"teacher": "\xff\xfe"}',
        b"\xff\xfe\xfd not utf-8",
        b"[" * 100_000 + b"]" * 100_000,
        b"{not json",
        b"",
    ],
)
def test_malformed_bodies_are_4xx(client: TestClient, content: bytes) -> None:
    response = client.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["message"]
    assert _counts(client) == (0, 0)


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b'{"n": 1,\n "x": }', "application/json", "body: invalid JSON at character 15: Expecting value"),
        (b"[1, 2]", "application/json", "body: expected a JSON object, got an array"),
        (b"null", "application/json", "body: expected a JSON object, got null"),
        (b"", "application/json", "body: expected a JSON object, got nothing"),
        (
            b"teacher=x&n=2",
            "application/x-www-form-urlencoded",
            "body: expected a JSON object, got a string (a JSON object is sent with Content-Type: "
            "application/json)",
        ),
    ],
)
def test_a_body_that_is_no_json_object_is_named_as_such(
    client: TestClient, content: bytes, content_type: str, message: str
) -> None:
    for route in ("/v1/jobs", "/v1/exports"):
        response = client.post(route, content=content, headers={"content-type": content_type})
        assert response.status_code == 422
        assert response.json()["message"] == message
        assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("shards", "finishing", "seconds", "pause"),
    [
        (0, False, 0.002, 2.0),  # a quick pass: the configured interval
        (0, True, 0.002, 0.2),  # near a job's end: often
        (0, True, 0.05, 0.45),  # a slow pass that wrote nothing: nine times its length
        (0, False, 0.5, 4.5),
        (3, True, 1.5, 0.2),  # shards written: the time went to work, not to looking
    ],
)
def test_the_flusher_spends_at_most_a_tenth_of_its_time_on_passes_that_write_nothing(
    shards: int, finishing: bool, seconds: float, pause: float
) -> None:
    result = FlushResult(shards=shards, rows=100 * shards, finishing=finishing)
    assert flush_pause(2.0, result, seconds) == pytest.approx(pause)


def test_an_unknown_verifier_names_the_installed_ones_and_the_restart_a_plugin_needs(
    client: TestClient,
) -> None:
    body = _with("verifiers", [{"name": "astrology"}])
    message = client.post("/v1/jobs", json=body).json()["errors"][0]["message"]
    assert message.startswith("unknown verifier 'astrology'; installed: ")
    assert "format, " in message and "restart the server and workers after installing a plugin" in message

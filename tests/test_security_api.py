"""The API as an attacker meets it, in process over real SQLite: every route refuses a request without a
valid token of the right role, a job cannot name another variable of the workers nor another host, and
no path given over HTTP reads outside the import folder. Each refusal's status is exact, and its text
names the field or the setting but never the token nor the secret."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import routes, ui
from service.api.app import create_app
from service.security.tokens import Role, entry_for, new_token
from service.settings import Settings

TOKENS = {name: new_token() for name in ("alice", "bob", "robin", "root")}
ROLES = {"alice": Role.submit, "bob": Role.submit, "robin": Role.read, "root": Role.admin}
DATABASE_SECRET = "postgresql://tracemill:pw-7c1e@db/tracemill"
PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/static/pygments.css"),
}
JOB: dict[str, Any] = {
    "teacher": {"base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key_env": "TEACHER_KEY"},
    "prompts": [{"id": "p0", "prompt": "Compute 1 + 1."}],
}

MakeClient = Callable[..., TestClient]


def _bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture
def make_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeClient]:
    monkeypatch.setenv("TRACEMILL_DATABASE_URL_OF_ANOTHER_SERVICE", DATABASE_SECRET)
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "general.jsonl").write_text('{"messages": []}\n')
    (tmp_path / "outside.jsonl").write_text("secret rows\n")
    (imports / "escape.jsonl").symlink_to(tmp_path / "outside.jsonl")
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        given: dict[str, Any] = {
            "data_dir": tmp_path / f"data{len(opened)}",
            "tokens": ",".join(entry_for(name, ROLES[name], token) for name, token in TOKENS.items()),
            "teacher_keys": {"TEACHER_KEY": ["127.0.0.1"]},
            "import_dir": imports,
            "hub_repos": ["team/*"],
        }
        settings = Settings(**{**given, **overrides})
        client = TestClient(create_app(settings, run_flusher=False)).__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def _routes() -> list[tuple[str, str]]:
    """Every method and path the app serves, with its path parameters filled in."""
    found = {
        (method, route.path)
        for route in [*routes.router.routes, *ui.router.routes]
        for method in getattr(route, "methods", ())
    }
    found |= {("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/redoc")}
    return sorted((m, re.sub(r"\{\w+\}", "1", path)) for m, path in found - PUBLIC)


def _create(client: TestClient, who: str = "alice", **changes: Any) -> Any:
    return client.post("/v1/jobs", json={**JOB, **changes}, headers=_bearer(who))


def _refused_field(response: Any) -> str:
    return str(response.json()["errors"][0]["field"])


@pytest.mark.parametrize(("method", "path"), _routes())
def test_every_route_wants_a_token_and_the_right_role(client: TestClient, method: str, path: str) -> None:
    wrong = "tm_" + "x" * 43
    bare = client.request(method, path, follow_redirects=False)
    forged = client.request(
        method, path, headers={"Authorization": f"Bearer {wrong}"}, follow_redirects=False
    )
    if path.startswith("/ui/") and method == "GET":
        assert bare.status_code == forged.status_code == 303
        assert bare.headers["location"].startswith("/ui/login?next=")
    else:
        assert (bare.status_code, forged.status_code) == (401, 401)
        assert bare.headers["www-authenticate"] == "Bearer"
        assert forged.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert wrong not in forged.text
    read = client.request(method, path, headers=_bearer("robin"), follow_redirects=False)
    if method == "GET":
        assert read.status_code not in (401, 403)
    else:
        assert read.status_code == 403
        assert "role read; this needs submit" in read.json()["message"]
        assert TOKENS["robin"] not in read.text


def test_health_and_the_login_page_need_no_token(client: TestClient) -> None:
    assert client.get("/v1/health").status_code == 200
    assert client.get("/ui/login").status_code == 200
    assert client.get("/ui/static/app.css").status_code == 200


@pytest.mark.parametrize("parameter", ["token", "access_token", "api_key", "TRACEMILL_TOKEN"])
def test_a_token_in_the_address_is_refused_even_when_right(client: TestClient, parameter: str) -> None:
    response = client.get(f"/v1/jobs?{parameter}={TOKENS['root']}", headers=_bearer("root"))
    assert response.status_code == 401
    assert "never accepted in the address" in response.json()["message"]
    assert TOKENS["root"] not in response.text


def test_a_wrong_login_sets_no_cookie_and_a_right_one_sets_a_strict_httponly_one(client: TestClient) -> None:
    wrong = client.post("/ui/login", data={"token": "tm_nope", "next": "/ui/jobs"}, follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers and "tm_nope" not in wrong.text
    right = client.post(
        "/ui/login", data={"token": TOKENS["robin"], "next": "//evil.example/x"}, follow_redirects=False
    )
    assert right.status_code == 303 and right.headers["location"] == "/ui/jobs"  # never another site
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/ui/jobs").status_code == 200  # the cookie now opens the pages


def test_a_token_acts_on_its_own_jobs_only_and_an_admin_on_any(client: TestClient) -> None:
    created = _create(client)
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=_bearer("robin")).json()["owner"] == "alice"
    other = client.post(f"/v1/jobs/{job_id}/cancel", headers=_bearer("bob"))
    assert other.status_code == 403 and "belongs to token 'alice'" in other.json()["message"]
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=_bearer("root")).status_code == 200
    assert client.post(f"/v1/jobs/{job_id}/resume", headers=_bearer("alice")).status_code == 200


@pytest.mark.parametrize(
    ("teacher", "field", "words"),
    [
        ({"api_key_env": "TRACEMILL_DATABASE_URL"}, "teacher.api_key_env", "not a key offered to jobs"),
        ({"api_key_env": "HF_TOKEN"}, "teacher.api_key_env", "not a key offered to jobs"),
        (
            {"api_key_env": "TRACEMILL_DATABASE_URL_OF_ANOTHER_SERVICE"},
            "teacher.api_key_env",
            "not a key offered to jobs",
        ),
        ({"base_url": "http://169.254.169.254/latest/meta-data"}, "teacher.base_url", "not an allowed"),
        ({"base_url": "http://10.0.0.7:8000/v1"}, "teacher.base_url", "not an allowed teacher host"),
        (
            {"base_url": ["http://127.0.0.1:8000/v1", "http://metadata.google.internal/v1"]},
            "teacher.base_url.1",
            "not an allowed teacher host",
        ),
        ({"base_url": "http://localhost:8000/v1"}, "teacher.api_key_env", "may not be sent to host"),
        ({"kind": "vllm-engine", "model": "/etc"}, "teacher.model", "TRACEMILL_ENGINE_MODELS"),
    ],
)
def test_a_job_reaches_only_the_keys_and_hosts_the_operator_allowed(
    client: TestClient, teacher: dict[str, Any], field: str, words: str
) -> None:
    spec = {**JOB["teacher"], **teacher}
    if teacher.get("kind") == "vllm-engine":
        spec = teacher
    response = _create(client, teacher=spec)
    assert response.status_code == 422, response.text
    assert _refused_field(response) == field and words in response.text
    assert DATABASE_SECRET not in response.text
    assert client.get("/v1/jobs", headers=_bearer("robin")).json() == []  # nothing was queued


@pytest.mark.parametrize(
    ("judge", "field", "words"),
    [
        ({"base_url": "http://10.0.0.7:8000/v1"}, "verifiers.1.options.judge.base_url", "not an allowed"),
        ({"api_key_env": "HF_TOKEN"}, "verifiers.1.options.judge.api_key_env", "not a key offered to jobs"),
        (
            {"base_url": "http://localhost:8000/v1"},
            "verifiers.1.options.judge.api_key_env",
            "may not be sent",
        ),
    ],
)
def test_a_judge_reaches_only_the_keys_and_hosts_the_operator_allowed(
    client: TestClient, judge: dict[str, Any], field: str, words: str
) -> None:
    settings = {"base_url": "http://127.0.0.1:8001/v1", "model": "j", "api_key_env": "TEACHER_KEY", **judge}
    verifiers = [{"name": "math"}, {"name": "judge", "options": {"judge": settings}}]
    response = _create(client, verifiers=verifiers)
    assert response.status_code == 422, response.text
    assert _refused_field(response) == field and words in response.text
    assert client.get("/v1/jobs", headers=_bearer("robin")).json() == []


def test_an_engine_job_may_not_set_options_that_name_files_or_code(make_client: MakeClient) -> None:
    client = make_client(engine_models=["/models/*"])
    teacher = {
        "kind": "vllm-engine",
        "model": "/models/m",
        "engine": {"options": {"trust_remote_code": True}},
    }
    response = _create(client, teacher=teacher)
    assert response.status_code == 422
    assert _refused_field(response) == "teacher.engine.options.trust_remote_code"
    teacher["engine"] = {"options": {"max_model_len": 2048}}
    assert _create(client, teacher=teacher).status_code == 201


@pytest.mark.parametrize("field", ["general", "decontaminate", "student_tokenizer"])
@pytest.mark.parametrize(
    "path", ["../outside.jsonl", "{root}/outside.jsonl", "./escape.jsonl", "/etc/passwd", "~/x"]
)
def test_no_path_given_over_http_reads_outside_the_import_folder(
    client: TestClient, tmp_path: Path, field: str, path: str
) -> None:
    given = path.format(root=tmp_path)
    body: dict[str, Any] = {"jobs": ["j"], field: given if field == "student_tokenizer" else [given]}
    if field == "student_tokenizer":
        body["soft_labels"] = True
    response = client.post("/v1/exports", json=body, headers=_bearer("alice"))
    assert response.status_code == 422, response.text
    assert _refused_field(response) == (field if field == "student_tokenizer" else f"{field}.0")
    assert "secret rows" not in response.text and "root:" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"general": ["general.jsonl"]},
        {"decontaminate": ["./general.jsonl"]},
        {"soft_labels": True, "student_tokenizer": "HuggingFaceTB/SmolLM2-135M"},
    ],
)
def test_a_file_inside_the_import_folder_or_a_hub_name_is_accepted(
    client: TestClient, body: dict[str, Any]
) -> None:
    response = client.post("/v1/exports", json={"jobs": ["no-such-job"], **body}, headers=_bearer("alice"))
    assert response.status_code == 404  # past the path check, on to the jobs


def test_no_path_is_read_until_the_operator_names_an_import_folder(make_client: MakeClient) -> None:
    client = make_client(import_dir=None)
    body = {"jobs": ["j"], "general": ["general.jsonl"]}
    response = client.post("/v1/exports", json=body, headers=_bearer("alice"))
    assert response.status_code == 422 and "TRACEMILL_IMPORT_DIR" in response.text


def test_a_push_goes_only_to_the_repositories_the_operator_allows(client: TestClient) -> None:
    refused = client.post(
        "/v1/exports", json={"jobs": ["j"], "push_to_hub": "evil/x"}, headers=_bearer("alice")
    )
    assert refused.status_code == 422 and _refused_field(refused) == "push_to_hub"
    allowed = client.post(
        "/v1/exports", json={"jobs": ["j"], "push_to_hub": "team/x"}, headers=_bearer("alice")
    )
    assert allowed.status_code == 404


def test_job_creation_is_rate_limited_per_token(make_client: MakeClient) -> None:
    client = make_client(jobs_per_minute=2)
    assert [_create(client).status_code for _ in range(2)] == [201, 201]
    third = _create(client)
    assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
    assert "TRACEMILL_JOBS_PER_MINUTE" in third.json()["message"]
    assert _create(client, who="bob").status_code == 201  # another token has its own allowance


def test_prompts_per_job_and_jobs_in_flight_are_capped(make_client: MakeClient) -> None:
    client = make_client(max_prompts_per_job=2, max_active_jobs_per_token=1)
    many = [{"id": f"p{i}", "prompt": "Compute 1 + 1."} for i in range(3)]
    too_many = _create(client, prompts=many)
    assert too_many.status_code == 422 and _refused_field(too_many) == "prompts"
    draft = _create(client, start=False)
    assert draft.status_code == 201
    page = client.post(
        f"/v1/jobs/{draft.json()['id']}/prompts", json={"prompts": many}, headers=_bearer("alice")
    )
    assert page.status_code == 422 and _refused_field(page) == "prompts"
    second = _create(client)
    assert second.status_code == 429 and second.headers["retry-after"]
    assert "TRACEMILL_MAX_ACTIVE_JOBS_PER_TOKEN" in second.json()["message"]

"""Attacks on a live stack run as a team would (tokens, the teacher key bound to 127.0.0.1): a job
that tries to make a worker send another secret to a listener of its choosing, or follow a redirect
to another host, gets nothing out. The listeners are real HTTP servers on loopback that record what
reaches them; afterwards the listeners' records, the database and the server's and worker's logs are
searched for the secrets and the tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from service.database import jobs
from service.database.db import make_engine
from service.schemas import JobIn
from service.settings import Settings
from service.standin.server import DEFAULT_MODEL
from tests.e2e.conftest import OTHER_SECRET, READ_TOKEN, SECRET, SUBMIT_TOKEN, Stack, authorized

REFUSAL_WAIT_S = 30
BODY_MARKER = "body-of-the-redirecting-host-5e1f"


@dataclass
class Listener:
    """An HTTP server that records every request; it answers 200, or a redirect to ``redirect_to``."""

    host: str = "127.0.0.1"
    redirect_to: str | None = None
    seen: list[str] = field(default_factory=list)  # request lines and headers, as received

    def __post_init__(self) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                listener.seen.append(f"{self.requestline}\n{self.headers}")
                if listener.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", listener.redirect_to + self.path)
                else:
                    self.send_response(200)
                self.end_headers()
                self.wfile.write(BODY_MARKER.encode())

            do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.url = f"http://{self.host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def _teacher(base_url: str, key: str) -> dict[str, Any]:
    return {"base_url": base_url + "/v1", "model": DEFAULT_MODEL, "api_key_env": key}


def _job(teacher: dict[str, Any]) -> dict[str, Any]:
    return {"teacher": teacher, "prompts": [{"id": "p0", "prompt": "Compute 1 + 1."}]}


def _last_error(stack: Stack, job_id: str, words: str) -> str:
    """The job's failed task's error once it holds ``words`` (the worker has met the job)."""
    deadline = time.monotonic() + REFUSAL_WAIT_S
    while time.monotonic() < deadline:
        job = stack.client.get(f"/v1/jobs/{job_id}").json()
        errors = [t["last_error"] or "" for t in job["failed_tasks"]]
        if any(words in e for e in errors):
            return "\n".join(errors)
        time.sleep(0.2)
    raise AssertionError(f"the worker did not record {words!r} for job {job_id}: {job}")


@pytest.mark.parametrize("key", ["OTHER_SERVICE_SECRET", "TRACEMILL_DATABASE_URL", "TEACHER_KEY"])
def test_a_job_naming_a_key_for_another_host_is_refused_and_nothing_is_sent(
    stack: Stack, receiver: Listener, key: str
) -> None:
    teacher = _teacher(receiver.url.replace("127.0.0.1", "localhost"), key)
    response = stack.client.post("/v1/jobs", json=_job(teacher))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "teacher.api_key_env"
    assert receiver.seen == []


def test_a_job_for_a_host_outside_the_list_is_refused(stack: Stack) -> None:
    for url in ("http://169.254.169.254/latest", "http://192.168.1.1:8000", "http://example.com"):
        response = stack.client.post("/v1/jobs", json=_job({"base_url": url, "model": "m"}))
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["field"] == "teacher.base_url"


def test_a_worker_refuses_such_a_job_found_in_the_database(stack: Stack, receiver: Listener) -> None:
    """Written straight into the database (no API to refuse it), as an old or forged job would be."""
    engine = make_engine(Settings(data_dir=stack.data_dir).database_url)
    try:
        spec = JobIn.model_validate(_job(_teacher(receiver.url, "OTHER_SERVICE_SECRET")))
        job_id = jobs.create_job(engine, spec).id
    finally:
        engine.dispose()
    error = _last_error(stack, job_id, "refused by this worker")
    assert "teacher.api_key_env" in error and "OTHER_SERVICE_SECRET" in error
    time.sleep(1)  # room for any request the worker might still send
    assert receiver.seen == []


def test_a_redirect_to_another_host_is_not_followed(stack: Stack) -> None:
    elsewhere = Listener(host="127.0.0.2")
    redirecting = Listener(redirect_to=elsewhere.url)
    try:
        created = stack.client.post("/v1/jobs", json=_job(_teacher(redirecting.url, "TEACHER_KEY")))
        assert created.status_code == 201, created.text
        error = _last_error(stack, created.json()["id"], "redirects are not followed")
        assert "HTTP 307" in error and BODY_MARKER not in error
        assert redirecting.seen and elsewhere.seen == []
    finally:
        redirecting.close()
        elsewhere.close()


def test_tokens_in_the_address_are_refused_and_logged_nowhere(stack: Stack) -> None:
    response = httpx.get(f"{stack.api}/v1/jobs", params={"token": SUBMIT_TOKEN})
    assert response.status_code == 401 and SUBMIT_TOKEN not in response.text
    with authorized(stack.api, READ_TOKEN) as reader:
        refused = reader.post("/v1/jobs", json=_job({"base_url": "http://127.0.0.1:9/v1", "model": "m"}))
        assert refused.status_code == 403 and READ_TOKEN not in refused.text
    with authorized(stack.api, "tm_forged") as forger:
        assert forger.get("/v1/jobs").status_code == 401


def test_no_secret_and_no_token_is_anywhere_they_should_not_be(stack: Stack, receiver: Listener) -> None:
    """Runs last: every record this module's attacks left, searched for what must not be in them."""
    stored = [p for p in stack.data_dir.rglob("*") if p.is_file()]
    assert {p.name for p in stored} >= {"api.log", "worker.log", "tracemill.db"}
    for path in stored:
        data = path.read_bytes()
        for secret in (OTHER_SECRET, SECRET, SUBMIT_TOKEN, READ_TOKEN, "tm_forged"):
            assert secret.encode() not in data, (secret, path)
    assert not any(OTHER_SECRET in seen or SECRET in seen for seen in receiver.seen)

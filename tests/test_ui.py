"""The pages over the app itself (no browser): escaping, error states, filters kept in links.

The browser tests (live server, headless Chromium) are in ``tests/e2e/test_ui_browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.database import finishing, queue
from service.database.finishing import NewSample
from service.settings import Settings
from verifiers.base import NamedVerdict

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, engine_models=["/models/*"])
    with TestClient(create_app(settings, run_flusher=False)) as client:
        yield client


def _job_with_samples(client: TestClient, completions: list[str]) -> str:
    created = client.post(
        "/v1/jobs",
        json={
            "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "t"},
            "n": len(completions),
            "prompts": [{"id": "p0", "prompt": f"Explain {HOSTILE}"}],
        },
    ).json()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    (task,) = queue.claim(engine, "w", 1, 30, max_attempts=3)
    samples = [
        NewSample(
            i,
            text,
            text,
            "stop",
            3,
            (NamedVerdict("format", False, "format:missing_think", {"why": HOSTILE}),),
        )
        for i, text in enumerate(completions)
    ]
    finishing.finish(engine, task, "w", samples, prompt_tokens=1)
    return str(created["id"])


def test_teacher_text_is_escaped_on_every_page(client: TestClient) -> None:
    job_id = _job_with_samples(client, [f"Here: {HOSTILE}\n```python\nprint('<b>')\n```"])
    sample_id = client.get(f"/v1/jobs/{job_id}/samples").json()["items"][0]["id"]
    for path in (
        "/ui/jobs",
        f"/ui/jobs/{job_id}",
        f"/ui/jobs/{job_id}/samples",
        f"/ui/jobs/{job_id}/samples/{sample_id}",
        f"/ui/jobs/{job_id}/prompts/p0",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
    sample = client.get(f"/ui/jobs/{job_id}/samples/{sample_id}").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in sample
    assert 'class="hl"' in sample  # the fenced block is highlighted code


def test_error_and_empty_states_are_pages(client: TestClient) -> None:
    assert "No jobs yet" in client.get("/ui/jobs").text
    assert 'data-poll="/ui/jobs?partial=rows"' in client.get("/ui/jobs").text  # so a first job shows up
    assert client.get("/").url.path == "/ui/jobs"
    missing = client.get("/ui/jobs/nope")
    assert missing.status_code == 404 and "no job with id &#39;nope&#39;" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    job_id = _job_with_samples(client, ["a", "b"])
    assert f'data-job="{job_id}"' in client.get("/ui/jobs?partial=rows").text
    assert client.get(f"/ui/jobs/{job_id}/samples/999999").status_code == 404
    no_prompt = client.get(f"/ui/jobs/{job_id}/prompts/nope")
    assert no_prompt.status_code == 404 and "has no sample of prompt &#39;nope&#39;" in no_prompt.text
    bad = client.get(f"/ui/jobs/{job_id}/samples?status=maybe")
    assert bad.status_code == 400 and "status: must be accepted or rejected" in bad.text
    assert client.get(f"/ui/jobs/{job_id}/samples?after=x").status_code == 400
    no_number = client.get(f"/ui/jobs/{job_id}/samples?min_entropy=high")
    assert no_number.status_code == 400 and "min_entropy: not a number" in no_number.text
    negative = client.get(f"/ui/jobs/{job_id}/samples?max_entropy=-1")
    assert "max_entropy: must be from 0 to 1000" in negative.text
    assert (
        "No sample matches these filters" in client.get(f"/ui/jobs/{job_id}/samples?q=nothing-like-it").text
    )
    assert client.get(f"/ui/jobs/{job_id}/samples?status=rejected").text.count('class="sample"') == 2
    assert "No accepted samples yet" in client.get(f"/ui/jobs/{job_id}/samples?status=accepted").text
    assert client.get("/v1/jobs/nope").json() == {"message": "no job with id 'nope'"}  # the API stays JSON


def test_filters_stay_in_the_links(client: TestClient) -> None:
    job_id = _job_with_samples(client, [f"text {i}" for i in range(3)])
    page = client.get(f"/ui/jobs/{job_id}/samples?status=rejected&reason=format:missing_think&q=text").text
    links = re.findall(r'href="(/ui/jobs/[^"]+/samples/\d+[^"]*)"', page)
    assert len(links) == 3
    assert all("status=rejected&amp;reason=format%3Amissing_think&amp;q=text" in link for link in links)
    sample = client.get(links[1].replace("&amp;", "&")).text
    assert 'rel="prev"' in sample and 'rel="next"' in sample


def test_a_job_on_the_in_process_engine_shows_its_engine_settings(client: TestClient) -> None:
    created = client.post(
        "/v1/jobs",
        json={
            "teacher": {
                "kind": "vllm-engine",
                "model": "/models/r1-distill",
                "engine": {"tensor_parallel_size": 2, "options": {"max_model_len": 8192}},
            },
            "prompts": [{"id": "p0", "prompt": "Compute 1 + 1."}],
        },
    ).json()
    page = client.get(f"/ui/jobs/{created['id']}").text
    assert "/models/r1-distill" in page and "engine inside each worker" in page
    assert "Soft labels" not in page
    assert "tensor parallel 2" in page and "max_model_len" in page


def test_a_job_with_soft_labels_says_so(client: TestClient) -> None:
    created = client.post(
        "/v1/jobs",
        json={
            "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "Qwen/Qwen2.5-72B-Instruct"},
            "soft_labels": {"top_k": 8},
            "prompts": [{"id": "p0", "prompt": "Compute 1 + 1."}],
        },
    ).json()
    page = client.get(f"/ui/jobs/{created['id']}").text
    assert "top 8 log-probabilities per token" in page and "Qwen/Qwen2.5-72B-Instruct" in page


def test_the_job_page_shows_each_verifiers_time_and_a_judges_tokens(client: TestClient) -> None:
    judge = {"judge": {"base_url": "http://127.0.0.1:9/v1", "model": "judge-7b"}}
    created = client.post(
        "/v1/jobs",
        json={
            "teacher": {"base_url": "http://127.0.0.1:9/v1", "model": "t"},
            "n": 2,
            "verifiers": [{"name": "format"}, {"name": "judge", "options": judge}],
            "prompts": [{"id": "p0", "prompt": "Compute 1 + 1."}],
        },
    ).json()
    engine = client.app.state.engine  # type: ignore[attr-defined]
    (task,) = queue.claim(engine, "w", 1, 30, max_attempts=3)
    usage = {"prompt_tokens": 900, "completion_tokens": 350}
    verdicts = (
        NamedVerdict("format", True, None, {}, 0.25),
        NamedVerdict("judge", True, None, {"model": "judge-7b", "usage": usage}, 1.5),
    )
    samples = [NewSample(i, "<think>a</think>2", "2", "stop", 3, verdicts) for i in range(2)]
    finishing.finish(engine, task, "w", samples, prompt_tokens=1)
    job = client.get(f"/v1/jobs/{created['id']}").json()
    assert [(v["name"], v["seconds"], v["tokens"]) for v in job["verifiers"]] == [
        ("format", 0.5, 0),
        ("judge", 3.0, 2500),
    ]
    judged = {"model": "judge-7b", "role": "judge", "prompt_tokens": 1800, "completion_tokens": 700}
    assert judged in job["usage"]
    page = client.get(f"/ui/jobs/{created['id']}").text
    judge_row = re.search(r'<tr class="verifier-cost" data-verifier="judge">.*?</tr>', page, re.S)
    assert judge_row and "3.0 s" in judge_row.group(0) and "2,500" in judge_row.group(0)
    assert "judge-7b" in page

"""POST /v1/exports runs in the background; GET shows progress and the report; mistakes are 4xx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from service.api.app import create_app
from service.api.exports import fail_interrupted, get_export
from service.database.db import utcnow, writing
from service.database.models import Export
from service.settings import Settings
from tests.test_export import _job_with_shards


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, import_dir=tmp_path)
    with TestClient(create_app(settings, run_flusher=False)) as client:
        yield client


def _wait(client: TestClient, export_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (state := client.get(f"/v1/exports/{export_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return dict(state)


def test_an_export_runs_in_the_background(client: TestClient, tmp_path: Path) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    job_id = _job_with_shards(engine, tmp_path / "shards")
    response = client.post("/v1/exports", json={"jobs": [job_id], "reasoning_share": 1.0})
    assert response.status_code == 202
    state = _wait(client, response.json()["id"])
    assert state["status"] == "done", state
    assert state["rows_written"] == state["report"]["reasoning"] == 39  # 40 prompts, one a duplicate
    folder = Path(state["location"])
    assert folder.is_relative_to(tmp_path) and (folder / "README.md").exists()
    assert any((folder / "data").glob("train-*.parquet"))


def test_mistakes_are_4xx(client: TestClient, tmp_path: Path) -> None:
    assert client.post("/v1/exports", json={"jobs": ["nope"]}).status_code == 404
    missing = client.post("/v1/exports", json={"jobs": ["x"], "general": [str(tmp_path / "none.jsonl")]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "general.0"
    assert client.post("/v1/exports", json={"jobs": []}).status_code == 422
    assert client.get("/v1/exports/nope").status_code == 404


def test_an_export_cut_off_by_a_restart_is_marked_failed(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with writing(engine) as conn:
        conn.execute(
            insert(Export).values(
                id="e1", status="running", request={}, location="/x", rows_written=5, created_at=utcnow()
            )
        )
    fail_interrupted(engine)
    state = get_export(engine, "e1")
    assert state.status == "failed" and state.error and "stopped" in state.error


def test_files_an_export_cannot_read_are_refused_when_it_is_asked_for(
    client: TestClient, tmp_path: Path
) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    job_id = _job_with_shards(engine, tmp_path / "shards")
    (tmp_path / "chat.csv").write_text("prompt,response\nhi,hello\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "texts.jsonl").write_text('{"text": "no turns here"}\n')
    (tmp_path / "broken.jsonl").write_text('{"prompt": "hi", \n')
    (tmp_path / "general.jsonl").write_text('{"prompt": "hi", "response": "hello"}\n')
    (tmp_path / "eval.jsonl").write_text('{"solution": "42"}\n')
    cases = [
        ({"general": ["chat.csv"]}, "general.0", "expected a .jsonl or .parquet file or a saved datasets"),
        ({"general": ["general.jsonl", "folder"]}, "general.1", "is a folder but no saved dataset"),
        ({"general": ["texts.jsonl"]}, "general.0", "its first row is no general sample"),
        ({"general": ["broken.jsonl"]}, "general.0", "broken.jsonl:1: not JSON"),
        ({"decontaminate": ["eval.jsonl"]}, "decontaminate.0", "no text column among problem, prompt"),
    ]
    for files, field, message in cases:
        body = {"jobs": [job_id], **{k: [str(tmp_path / name) for name in v] for k, v in files.items()}}
        response = client.post("/v1/exports", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["field"] == field and message in error["message"], (files, error)
    assert not (tmp_path / "exports").exists()  # nothing was started


def test_a_failed_export_leaves_no_folder_and_says_why(client: TestClient, tmp_path: Path) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    job_id = _job_with_shards(engine, tmp_path / "shards")
    general = tmp_path / "general.jsonl"
    general.write_text('{"prompt": "hi", "response": "hello"}\n{"prompt": \n')  # bad from line 2
    response = client.post("/v1/exports", json={"jobs": [job_id], "general": [str(general)]})
    assert response.status_code == 202
    state = _wait(client, response.json()["id"])
    assert state["status"] == "failed" and "general.jsonl:2: not JSON" in str(state["error"])
    assert not Path(str(state["location"])).exists()

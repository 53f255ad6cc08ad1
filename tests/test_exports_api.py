"""POST /v1/exports runs in the background; GET shows progress and the report; mistakes are 4xx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from service.api import create_app
from service.db import utcnow, writing
from service.exports import fail_interrupted, get_export
from service.models import Export
from service.settings import Settings
from tests.test_export import _job_with_shards


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, import_dir=tmp_path)
    with TestClient(create_app(settings, run_flusher=False)) as client:
        yield client


def test_an_export_runs_in_the_background(client: TestClient, tmp_path: Path) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    job_id = _job_with_shards(engine, tmp_path / "shards")
    response = client.post("/v1/exports", json={"jobs": [job_id], "reasoning_share": 1.0})
    assert response.status_code == 202
    export_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while (state := client.get(f"/v1/exports/{export_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
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
